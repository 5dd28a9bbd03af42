#!/usr/bin/env bash
# Starts the local PostgreSQL and Redis that Outpost and its tests use, unless
# they already respond on 127.0.0.1:5432 and 127.0.0.1:6379. It uses the
# Debian packages' commands, as on the development and CI machines.
set -euo pipefail

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
	echo "starting PostgreSQL" >&2
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
	for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
	pg_isready -h 127.0.0.1 -p 5432
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	echo "starting Redis" >&2
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
	for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
	redis-cli -h 127.0.0.1 -p 6379 ping
fi
