"""pbxsim: an asyncio stand-in for Asterisk 22, held to its recorded traces (tests/pbxsim/traces).

Modules: `ami` (AMI server, login, permissions, actions), `dialplan` (extensions.conf and the
`${}`/`$[]` language), `functions` (dialplan functions), `channels` (channels, Local pairs,
bridges, hang-up causes, CDRs), `apps` (dialplan applications, Dial), `agi` (FastAGI client),
`core` (clock, identifiers, event bus, Originate, the dialplan runner), `server` (start/stop).
Each imports only those before it in the order dialplan, channels, functions, apps, agi, core,
ami, server: what a lower one needs of the PBX it declares as a Protocol (`channels.Switch`,
`apps.Exchange`), and the core hands its events to listeners, the AMI server being one.

Choices where Asterisk gives no single answer:

- Time scale N: every wait, ring, limit, playback and Originate Timeout runs N times faster;
  CDR times, ANSWEREDTIME and friends are on a simulated clock (start time + elapsed * N).
- A wrong Login secret is answered after 1 real second (not scaled), as Asterisk's brake
  against guessing; the connection closes right after.
- Playback lengths come from WAV files in --sounds; without one, the stock prompts the
  traces play keep their recorded lengths (hello-world 1.4 s, beep 0.43 s, ...), others 1 s.
- Dial strings of other technologies (PJSIP/SIP/IAX2/DAHDI, or any --route TECH=CONTEXT) run
  in a context, default `pbxsim-trunk`, with the dialled number as exten; the visible channel
  is named like `PJSIP/carrier-00000001`. Without that context they fail as Asterisk does for
  an unknown technology.
- A failed Originate sends its OriginateResponse before the ;1's Hangup, as Asterisk 22 did in
  every run of tests/pbxsim/apps; `--originate-failure-order hangup-first` sends the order the
  older traces show (both happen: apps must decide the same either way).
- MessageSend delivers through the --message-technologies (default `pjsip`): logged and
  appended as a JSON line to --messages-file. An empty list is the traces' Asterisk, which had
  no SIP stack and answers `Message technology not found.`
"""
