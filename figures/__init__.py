"""Figures: PUE over periods, the 15-minute block roll-up, live windows and audit reports.

Computed from what the store holds (through its interface, store.base.StoreProtocol,
never a backend) with the pure formulas of pue/; read by web/, metrics and exchange/.
"""
