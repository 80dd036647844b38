"""Exchange with other systems: the InfluxDB exporter (line protocol, durable outbox,
writer) and the CSV importer of historical readings.

Above store/ and figures/: exporters read figures, the importer writes readings and has
their blocks recomputed; nothing below imports this package.
"""
