"""The central service of a province: accepts what each data center's monitor (the edge)
ships (InfluxDB v2 line protocol readings, the site definition as JSON, the run log),
authenticated per data center, stores it and serves the web view for every site.

Collectors are never imported here: the central polls nothing.
"""
