"""The organisers' files read and checked, every problem with file:line: schedule, members, articles."""
