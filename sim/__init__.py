"""Stand-ins for the outside world, for the demo, tests and benchmarks. The daemon never imports this package.

venue       the venue simulator (order session and drop copy)
oms_client  a scripted OMS client
demo        `fixgw demo`: gateway + venue simulator + scripted clients on loopback
"""
