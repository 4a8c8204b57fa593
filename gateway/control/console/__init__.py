"""The operator console in the browser: live views of the running gateway and authenticated actions.

    auth      users and roles from a file of salted password hashes (argon2), login throttling, CSRF tokens
    snapshot  what the pages show, read from the gateway (its status, the journal, the reconciliation store)
    views     the HTML of each part of the page, rendered on the server
    app       the aiohttp application: login, the page, its live updates (server-sent events), the actions
"""
