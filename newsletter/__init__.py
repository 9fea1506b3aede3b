"""Meeting reminders for a support group: schedule.yaml + subscribers.csv → one private mail per member."""

__version__ = "0.1.0"
