"""What a mail is: the template context, Jinja2 + premailer rendered once, MIME bytes, the .ics, DKIM."""
