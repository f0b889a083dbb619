"""What every running part of the study stands on, whatever runs it: the `Component` protocol
and the errors a start raises (`component`), native child processes of this Python
(`process`), the loopback rule and free ports (`ports`), and the addresses a process listens
on (`exposure`).

The lowest of the lifecycle layers (host < engine < build < stack): it imports none of them.
"""
