from pue_monitor.cli import entry

entry()
