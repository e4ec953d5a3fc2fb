"""Exchange emulator: Binance (and more venues via adapters) on one loopback port, for unmodified CCXT.

Framework-free: never imports Django or the connectors. Entry points: :class:`emulator.server.EmulatorServer`,
:func:`emulator.testing.running_emulator`, ``python -m emulator``.
"""
