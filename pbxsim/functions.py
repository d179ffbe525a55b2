"""Dialplan functions (`${FUNC(args)}` and `Set(FUNC(args)=value)`)."""

from __future__ import annotations

import random
import time

from .channels import STATE_DESC, Channel
from .dialplan import DialplanError, split_args, substitute, truthy


def _callerid(chan: Channel, args: str) -> str:
    field = args.split(",")[0].strip().lower()
    if field in ("num", "number"):
        return chan.cid_num
    if field == "name":
        return chan.cid_name
    if field == "all":
        return f'"{chan.cid_name}" <{chan.cid_num}>'
    if field == "dnid":
        return ""
    raise DialplanError(f"CALLERID({args}): unsupported field")


def _channel(chan: Channel, args: str) -> str:
    item = args.strip().lower()
    values = {
        "name": chan.name,
        "uniqueid": chan.uniqueid,
        "linkedid": chan.linkedid,
        "state": STATE_DESC.get(chan.state, "Unknown"),
        "language": chan.language,
        "context": chan.context,
        "exten": chan.exten,
        "accountcode": chan.accountcode,
        "channeltype": chan.tech,
        "musicclass": "default",
        "hangupsource": "",
        "callid": "",
        "peer": chan.bridge_peer_name(),
    }
    if item in values:
        return values[item]
    raise DialplanError(f"CHANNEL({args}): unsupported item")


def _if(chan: Channel, args: str) -> str:
    cond, _, choices = args.partition("?")
    yes, _, no = choices.partition(":")
    return yes if truthy(cond) else no


def _cut(chan: Channel, args: str) -> str:
    parts = split_args(args)
    var = parts[0]
    delim = parts[1] if len(parts) > 1 and parts[1] else "-"
    fields = parts[2] if len(parts) > 2 else "1"
    pieces = (chan.get_variable(var) or "").split(delim)
    out = []
    for spec in fields.split("&"):
        if "-" in spec:
            lo, _, hi = spec.partition("-")
            out.extend(pieces[int(lo or 1) - 1 : int(hi) if hi else None])
        elif spec:
            idx = int(spec) - 1
            if 0 <= idx < len(pieces):
                out.append(pieces[idx])
    return delim.join(out)


def _strftime(chan: Channel, args: str) -> str:
    parts = split_args(args)
    epoch = float(parts[0]) if parts and parts[0] else chan.pbx.now()
    fmt = parts[2] if len(parts) > 2 and parts[2] else "%c"
    return time.strftime(fmt, time.localtime(epoch))


def _rand(chan: Channel, args: str) -> str:
    parts = split_args(args)
    lo = int(parts[0]) if parts and parts[0] else 0
    hi = int(parts[1]) if len(parts) > 1 and parts[1] else 2147483647
    return str(random.randint(min(lo, hi), max(lo, hi)))


def _exists(chan: Channel, args: str) -> str:
    return "1" if args else "0"


READERS = {
    "CALLERID": _callerid,
    "CHANNEL": _channel,
    "IF": _if,
    "LEN": lambda chan, args: str(len(args)),
    "ISNULL": lambda chan, args: "1" if args == "" else "0",
    "EXISTS": _exists,
    "TOUPPER": lambda chan, args: args.upper(),
    "TOLOWER": lambda chan, args: args.lower(),
    "CUT": _cut,
    "GLOBAL": lambda chan, args: chan.pbx.dialplan.globals.get(args.strip(), ""),
    "LOCAL": lambda chan, args: chan.variables.get(args.strip(), ""),
    "HANGUPCAUSE": lambda chan, args: str(chan.hangupcause),
    "STRFTIME": _strftime,
    "RAND": _rand,
    "EVAL": lambda chan, args: _eval(chan, args),
    "TIMEOUT": lambda chan, args: _timeout_read(chan, args),
    "CDR": lambda chan, args: _cdr_read(chan, args),
    "DIALPLAN_EXISTS": lambda chan, args: _dialplan_exists(chan, args),
}


def _eval(chan: Channel, args: str) -> str:
    return substitute(args, chan)


def _timeout_read(chan: Channel, args: str) -> str:
    if args.strip().lower() == "absolute":
        return "0" if chan.timeout_handle is None else str(max(int(chan.timeout_handle.when()), 0))
    return "0"


def _cdr_read(chan: Channel, args: str) -> str:
    rec = chan.cdr.current
    field = args.split(",")[0].strip().lower()
    now = chan.pbx.now()
    values = {
        "uniqueid": chan.uniqueid,
        "channel": chan.name,
        "dst": rec.destination,
        "dcontext": rec.dcontext,
        "lastapp": rec.lastapp,
        "lastdata": rec.lastdata,
        "dstchannel": rec.dstchannel,
        "src": chan.cid_num,
        "duration": str(int(now - rec.start)),
        "billsec": str(int(now - rec.answer)) if rec.answer else "0",
        "userfield": chan.internal.get("cdr_userfield", ""),
    }
    return values.get(field, "")


def _dialplan_exists(chan: Channel, args: str) -> str:
    parts = split_args(args)
    ctx = parts[0] if parts else chan.context
    exten = parts[1] if len(parts) > 1 else "s"
    prio = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 1
    return "1" if chan.pbx.dialplan.exists(ctx, exten, prio) else "0"


def read_function(chan: Channel, name: str, args: str) -> str:
    reader = READERS.get(name.upper())
    if reader is None:
        raise DialplanError(f"function {name}() is not implemented by the simulator")
    return reader(chan, args)


def write_function(chan: Channel, name: str, args: str, value: str) -> None:
    upper = name.upper()
    item = args.strip()
    if upper == "CALLERID":
        field = item.split(",")[0].lower()
        if field in ("num", "number"):
            chan.set_callerid(value, None)
        elif field == "name":
            chan.set_callerid(None, value)
        elif field == "all":
            name_part, _, num = value.rpartition("<")
            chan.set_callerid(num.rstrip(">").strip(), name_part.strip().strip('"'))
        else:
            raise DialplanError(f"CALLERID({args}): unsupported field")
    elif upper == "CHANNEL":
        key = item.lower()
        if key == "hangup_handler_push":
            handler = value.replace("^", ",")
            chan.hangup_handlers.append(handler)
            chan.emit("HangupHandlerPush", "dialplan,all", f"Handler: {handler}\r\n")
        elif key == "language":
            chan.language = value
        elif key == "accountcode":
            chan.accountcode = value
        elif key in ("musicclass", "hangupsource"):
            chan.internal[key] = value
        else:
            raise DialplanError(f"CHANNEL({args}) cannot be set by the simulator")
    elif upper == "TIMEOUT":
        if item.lower() == "absolute":
            chan.pbx.absolute_timeout(chan, float(value or 0))
        # digit/response timeouts only shape Read/WaitExten defaults; accepted and ignored
    elif upper == "GLOBAL":
        chan.pbx.dialplan.globals[item] = value
    elif upper == "LOCAL":
        chan.set_variable(item, value)
    elif upper == "CDR":
        field = item.split(",")[0].lower()
        if field == "userfield":
            chan.internal["cdr_userfield"] = value
        else:
            chan.internal[f"cdr_{field}"] = value
    elif upper == "HANGUPCAUSE":
        chan.hangupcause = int(value or 0)
    else:
        raise DialplanError(f"function {name}() cannot be set by the simulator")
