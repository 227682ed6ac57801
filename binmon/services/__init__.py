"""Qt-free services: asyncio code the desktop app (and benchmarks) drive."""
