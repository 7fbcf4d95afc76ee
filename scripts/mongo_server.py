"""A MongoDB wire-protocol server for the tests (mongoeco on SQLite), with SCRAM auth, on loopback.

Run by scripts/setup-mongo.sh with the Python 3.13 of its own virtual environment:
    mongo_server.py --port 27018 --db /var/tmp/madengine-mongo/data.sqlite --user madengine \
        --password-file /var/tmp/madengine-mongo/password
The password is read from the file (never from argv or the environment). SIGTERM/SIGINT stop it.
Also `mongo_server.py --check ...` (same options): exit 0 when a ping with these credentials succeeds.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import urllib.parse


def _password(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


async def _serve(args: argparse.Namespace) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer, WireAuthUser

    users = (
        WireAuthUser(
            username=args.user,
            password=_password(args.password_file),
            roles=({"role": "root", "db": "admin"},),
        ),
    )
    async with AsyncMongoEcoProxyServer(
        engine=SQLiteEngine(args.db), host=args.host, port=args.port, auth_users=users
    ) as server:
        print(f"listening {args.host}:{args.port} auth user {args.user}", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        print(f"stopping ({server.address.uri.split('@')[-1]})", flush=True)


def _check(args: argparse.Namespace) -> int:
    import pymongo

    uri = (
        f"mongodb://{urllib.parse.quote_plus(args.user)}:{urllib.parse.quote_plus(_password(args.password_file))}"
        f"@{args.host}:{args.port}/?authSource=admin&authMechanism=SCRAM-SHA-256&directConnection=true"
    )
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        client.admin.command("ping")
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the type is the message
        print(f"not ready: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", default=":memory:")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--check", action="store_true", help="only ping the running server with these credentials")
    args = parser.parse_args()
    if args.check:
        return _check(args)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
