"""The local sandbox's AWS emulator: moto in server mode, with EC2 instances whose SSM
agent really runs the commands sent to them.

moto records an SSM command and answers ``Success`` without running anything; this
package extends moto's SSM API inside the emulator's own server process so the sandbox
plays EC2 and SSM faithfully (``orca_emulator.ssm_api``, ``orca_emulator.agent``). It
imports nothing of Orca's: Orca's runners talk plain HTTP to it and cannot tell it from
AWS. Started as ``python -m orca_emulator --home DIR -H 127.0.0.1 -p PORT``.
"""
