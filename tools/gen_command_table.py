#!/usr/bin/env python3
"""Generates node/src/command/table.rs, Shoal's own command table, for the commands Shoal
implements. Facts (arity, flags, key specs, docs) are read from a directory of Valkey 8 command
JSON metadata given on the command line; the output is our own Rust data, in our own format.

usage: tools/gen_command_table.py ../shared/reference/valkey-8.0.1-commands > node/src/command/table.rs
Add a command by adding its name (and subcommands) to IMPLEMENTED and re-running.
"""
import json
import os
import sys

# name -> list of implemented subcommands (None: not a container)
IMPLEMENTED = {
    # connection
    "ping": None, "echo": None, "hello": None, "auth": None, "select": None, "quit": None,
    "reset": None,
    "client": ["id", "setname", "getname", "list", "info", "kill", "setinfo", "no-evict",
               "no-touch", "reply", "help", "capa", "tracking", "caching", "getredir", "trackinginfo"],
    # server
    "info": None, "config": ["get", "set", "resetstat", "rewrite", "help"],
    "command": ["count", "info", "list", "docs", "getkeys", "getkeysandflags", "help"],
    "dbsize": None, "flushdb": None, "flushall": None, "time": None,
    "memory": ["usage", "doctor", "malloc-stats", "purge", "stats", "help"], "swapdb": None, "shutdown": None, "function": ["flush"],
    "lastsave": None,
    "slowlog": ["get", "len", "reset", "help"], "monitor": None, "debug": None,
    "latency": ["latest", "history", "reset", "graph", "doctor", "histogram", "help"],
    # keys
    "del": None, "unlink": None, "exists": None, "type": None, "expire": None, "pexpire": None,
    "expireat": None, "pexpireat": None, "ttl": None, "pttl": None, "expiretime": None,
    "pexpiretime": None, "persist": None, "keys": None, "scan": None, "randomkey": None,
    "rename": None, "renamenx": None, "touch": None, "copy": None, "move": None,
    "object": ["encoding", "freq", "idletime", "refcount", "help"],
    # strings
    "get": None, "set": None, "setnx": None, "setex": None, "psetex": None, "getset": None,
    "getdel": None, "getex": None, "mget": None, "mset": None, "msetnx": None, "incr": None,
    "decr": None, "incrby": None, "decrby": None, "incrbyfloat": None, "append": None,
    "strlen": None, "getrange": None, "substr": None, "setrange": None, "lcs": None,
    # Valkey 9 (metadata in tools/commands-extra/)
    "delifeq": None, "msetex": None, "hgetdel": None,
    "hexpire": None, "hpexpire": None, "hexpireat": None, "hpexpireat": None, "httl": None, "hpttl": None,
    "hexpiretime": None, "hpexpiretime": None, "hpersist": None, "hgetex": None, "hsetex": None,
    # hashes (helper-types-hs)
    "hset": None, "hsetnx": None, "hget": None, "hmget": None, "hmset": None, "hdel": None,
    "hexists": None, "hlen": None, "hstrlen": None, "hkeys": None, "hvals": None, "hgetall": None,
    "hincrby": None, "hincrbyfloat": None, "hrandfield": None, "hscan": None,
    # sets (helper-types-hs)
    "sadd": None, "srem": None, "sismember": None, "smismember": None, "scard": None,
    "smembers": None, "srandmember": None, "spop": None, "smove": None, "sinter": None,
    "sintercard": None, "sunion": None, "sdiff": None, "sinterstore": None, "sunionstore": None,
    "sdiffstore": None, "sscan": None,
    # cluster (the last six subcommands are Shoal's / Valkey 9's: tools/commands-extra/)
    "cluster": ["addslots", "addslotsrange", "delslots", "delslotsrange", "countkeysinslot",
                "getkeysinslot", "help", "info", "keyslot", "links", "myid", "myshardid", "nodes",
                "shards", "slots", "slot-stats", "setslot",
                "settopology", "migrateslots", "getslotmigrations", "cancelslotmigrations",
                "syncslots", "gettopology", "failover", "replicas", "slaves", "publishlocal",
                "slotsmoved"],
    "asking": None, "readonly": None, "readwrite": None,
    "dump": None, "restore": None, "restore-asking": None,
    # pubsub
    "subscribe": None, "psubscribe": None, "ssubscribe": None, "unsubscribe": None,
    "punsubscribe": None, "sunsubscribe": None, "publish": None, "spublish": None,
    "pubsub": ["channels", "numsub", "numpat", "shardchannels", "shardnumsub", "help"],
    # lists (and the blocking ones)
    "lpush": None, "rpush": None, "lpushx": None, "rpushx": None, "lpop": None, "rpop": None,
    "llen": None, "lrange": None, "lindex": None, "lset": None, "linsert": None, "lrem": None,
    "ltrim": None, "lpos": None, "lmove": None, "rpoplpush": None, "lmpop": None,
    "blpop": None, "brpop": None, "blmove": None, "brpoplpush": None, "blmpop": None,
    # sorted sets (zset family; the blocking BZPOP*/BZMPOP belong to the blocking family)
    "zadd": None, "zincrby": None, "zrem": None, "zscore": None, "zmscore": None, "zcard": None,
    "zrank": None, "zrevrank": None, "zcount": None, "zlexcount": None, "zrandmember": None,
    "zscan": None, "zrange": None, "zrangestore": None, "zrangebyscore": None,
    "zrevrangebyscore": None, "zrangebylex": None, "zrevrangebylex": None, "zrevrange": None,
    "zremrangebyrank": None, "zremrangebyscore": None, "zremrangebylex": None, "zpopmin": None,
    "zpopmax": None, "zmpop": None, "zunion": None, "zinter": None, "zdiff": None,
    "zunionstore": None, "zinterstore": None, "zdiffstore": None, "zintercard": None,
    "bzpopmin": None, "bzpopmax": None, "bzmpop": None,
    # SORT, and GEO (sorted sets of geohash scores)
    "sort": None, "sort_ro": None,
    "geoadd": None, "geodist": None, "geohash": None, "geopos": None, "geosearch": None,
    "geosearchstore": None, "georadius": None, "georadius_ro": None, "georadiusbymember": None,
    "georadiusbymember_ro": None,
    # transactions
    "multi": None, "exec": None, "discard": None, "watch": None, "unwatch": None,
    # bitmaps
    "setbit": None, "getbit": None, "bitcount": None, "bitpos": None, "bitop": None,
    "bitfield": None, "bitfield_ro": None,
    # hyperloglog
    "pfadd": None, "pfcount": None, "pfmerge": None,
    # replication (primary side)
    "psync": None, "sync": None, "replconf": None, "role": None, "wait": None,
    "replicaof": None, "slaveof": None,
    # scripting
    "eval": None, "evalsha": None, "eval_ro": None, "evalsha_ro": None,
    "script": ["load", "exists", "flush", "kill", "show", "help", "debug"],
    "fcall": None, "fcall_ro": None,
    "function": ["load", "list", "delete", "flush", "stats", "kill", "dump", "restore", "help"],
    # streams
    "xadd": None, "xrange": None, "xrevrange": None, "xlen": None, "xdel": None, "xtrim": None,
    "xread": None, "xreadgroup": None, "xack": None, "xpending": None, "xclaim": None,
    "xautoclaim": None, "xsetid": None,
    "xgroup": ["create", "setid", "destroy", "createconsumer", "delconsumer", "help"],
    "xinfo": ["stream", "groups", "consumers", "help"],
}
# lists: CLIENT UNBLOCK belongs to the blocking machinery
IMPLEMENTED["client"] = IMPLEMENTED["client"] + ["unblock", "pause", "unpause"]
# ACL users (docs/acl.md)
IMPLEMENTED["acl"] = ["cat", "deluser", "dryrun", "genpass", "getuser", "help", "list", "load", "log", "save",
                      "setuser", "users", "whoami"]

# Metadata of commands that are not in Valkey 8's reference (Shoal's own, or Valkey 9's),
# in the same JSON format.
EXTRA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "commands-extra")

ACL_ORDER = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
             "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
             "dangerous", "connection", "transaction", "scripting"]


def rs(s):
    return json.dumps(s)  # a JSON string literal is a valid Rust string literal here


def strs(xs):
    return "&[" + ", ".join(rs(x) for x in xs) + "]"


def acl(info):
    cats = {c.lower() for c in info.get("acl_categories", [])}
    flags = set(info.get("command_flags", []))
    if "WRITE" in flags:
        cats.add("write")
    if "READONLY" in flags and "scripting" not in cats:
        cats.add("read")
    if "ADMIN" in flags:
        cats |= {"admin", "dangerous"}
    if "PUBSUB" in flags:
        cats.add("pubsub")
    if "FAST" in flags:
        cats.add("fast")
    if "BLOCKING" in flags:
        cats.add("blocking")
    if "fast" not in cats:
        cats.add("slow")
    return [c for c in ACL_ORDER if c in cats]


def key_spec(ks):
    b = ks["begin_search"]
    if "index" in b:
        begin = f"BeginSearch::Index({b['index']['pos']})"
    elif "keyword" in b:
        kw = b["keyword"]
        begin = f"BeginSearch::Keyword {{ keyword: {rs(kw['keyword'])}, startfrom: {kw['startfrom']} }}"
    else:
        begin = "BeginSearch::Unknown"
    f = ks["find_keys"]
    if "range" in f:
        r = f["range"]
        find = f"FindKeys::Range {{ lastkey: {r['lastkey']}, step: {r['step']}, limit: {r['limit']} }}"
    elif "keynum" in f:
        k = f["keynum"]
        find = f"FindKeys::Keynum {{ keynumidx: {k['keynumidx']}, firstkey: {k['firstkey']}, step: {k['step']} }}"
    else:
        find = "FindKeys::Unknown"
    return f"KeySpec {{ flags: {strs(ks.get('flags', []))}, begin: {begin}, find: {find} }}"


def legacy_range(specs):
    first = last = step = 0
    for ks in specs:
        b, f = ks["begin_search"], ks["find_keys"]
        if "index" not in b or "range" not in f or f["range"]["limit"] != 0:
            continue
        pos, lk, st = b["index"]["pos"], f["range"]["lastkey"], f["range"]["step"]
        lastabs = pos + lk if lk >= 0 else lk
        if first == 0:
            first, last, step = pos, lastabs, st
        else:
            first = min(first, pos)
            if last >= 0 and lastabs >= 0:
                last = max(last, lastabs)
            elif lastabs < 0:
                last = lastabs
    return first, last, step


def movable(info):
    # Valkey reports movablekeys only from the key specs: SET and BITFIELD have a
    # get_keys_function but `COMMAND INFO` shows no movablekeys for them.
    for ks in info.get("key_specs", []):
        if "index" not in ks["begin_search"] or "range" not in ks["find_keys"]:
            return True
    return False


def args_rs(args, indent):
    if not args:
        return "&[]"
    pad = " " * indent
    out = ["&["]
    for a in args:
        token = f"Some({rs(a['token'])})" if "token" in a else "None"
        out.append(
            f"{pad}    Arg {{ name: {rs(a['name'])}, kind: {rs(a['type'])}, token: {token}, "
            f"optional: {str(a.get('optional', False)).lower()}, multiple: {str(a.get('multiple', False)).lower()}, "
            f"args: {args_rs(a.get('arguments', []), indent + 4)} }},")
    out.append(pad + "]")
    return "\n".join(out)


def meta(name, info, subs, indent):
    pad = " " * indent
    flags = [f.lower() for f in info.get("command_flags", [])]
    if movable(info):
        flags.append("movablekeys")
    specs = info.get("key_specs", [])
    first, last, step = legacy_range(specs)
    tips = [t.lower() for t in info.get("command_tips", [])]
    specs_rs = "&[" + ", ".join(key_spec(k) for k in specs) + "]"
    sub_rs = "&[]"
    if subs:
        sub_rs = "&[\n" + ",\n".join(subs) + f",\n{pad}]"
    return (
        f"{pad}CommandMeta {{\n"
        f"{pad}    name: {rs(name)},\n"
        f"{pad}    arity: {info['arity']},\n"
        f"{pad}    flags: {strs(flags)},\n"
        f"{pad}    acl: {strs(acl(info))},\n"
        f"{pad}    tips: {strs(tips)},\n"
        f"{pad}    key_specs: {specs_rs},\n"
        f"{pad}    first_key: {first},\n"
        f"{pad}    last_key: {last},\n"
        f"{pad}    step: {step},\n"
        f"{pad}    group: {rs(info.get('group', ''))},\n"
        f"{pad}    since: {rs(info.get('since', ''))},\n"
        f"{pad}    summary: {rs(info.get('summary', ''))},\n"
        f"{pad}    complexity: {rs(info.get('complexity', ''))},\n"
        f"{pad}    args: {args_rs(info.get('arguments', []), indent + 4)},\n"
        f"{pad}    subcommands: {sub_rs},\n"
        f"{pad}}}"
    )


def load(ref, fname):
    extra = os.path.join(EXTRA, fname)
    with open(extra if os.path.exists(extra) else os.path.join(ref, fname)) as fh:
        (_, info), = json.load(fh).items()
    return info


def main():
    ref = sys.argv[1]
    entries = []
    for name in sorted(IMPLEMENTED):
        info = load(ref, f"{name}.json")
        subs = []
        for sub in sorted(IMPLEMENTED[name] or []):
            subs.append(meta(sub, load(ref, f"{name}-{sub}.json"), None, 12))
        entries.append(meta(name, info, subs, 4))
    print("//! The command table: name, arity, flags, ACL categories, key specs and docs of every")
    print("//! command Shoal implements. Generated by `tools/gen_command_table.py`; edit the list there")
    print("//! and re-run rather than editing by hand.")
    print()
    print("use super::meta::*;")
    print()
    print("/// Every command the node implements, sorted by name.")
    print("pub static COMMANDS: &[CommandMeta] = &[")
    for e in entries:
        print(e + ",")
    print("];")


if __name__ == "__main__":
    main()
