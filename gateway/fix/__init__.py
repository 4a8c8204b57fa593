"""FIX sessions: the only package that imports quickfix.

application  the QuickFIX Application classes (callbacks in, thread hand-offs out)
settings     QuickFIX settings generated from the gateway's config (nobody keeps a .cfg by hand)
messages     field access, message building, and the quickfix types the order path names
sessions     session keys, SessionIDs, and looking a live session up (logon state, logout, sequence numbers)
schedule     the ScheduleKeeper: the trading days and windows QuickFIX's own schedule cannot express
translate    FIX 4.2 / 5.0 SP2 sessions mapped to and from the FIX 4.4 the order path speaks
"""
