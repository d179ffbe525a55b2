from django.dispatch import Signal

# Sent by `manage.py demo_data` with company= (the demo company) and write= (prints a line):
# each app adds its own demo rows, so accounts knows none of them.
demo_data_loading = Signal()
