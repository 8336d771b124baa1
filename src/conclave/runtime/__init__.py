"""The shell: the driver that executes Readies, and (later) the asyncio node runner.

Only `conclave.runtime.driver` may be imported by the simulator; it is synchronous and never
touches asyncio, sockets or clocks itself: it talks to ports.
"""
