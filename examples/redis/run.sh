#!/usr/bin/env bash
# Runs the Redis example framework on embedded defaults (embedded etcd, a
# local Mesos cluster of three agents, the REST API on 127.0.0.1:5656).
# First, on a fresh machine, it installs Debian's redis-server and
# redis-tools if they are missing, and, where a Docker engine answers, builds
# the redis:7 image from them (no registry is needed). Flags are passed on to
# the framework (go run ./examples/redis -help lists them).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
	echo "run.sh: installing redis-server and redis-tools with apt-get"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
	# The package starts a system-wide server on 6379; the framework starts its own.
	$sudo service redis-server stop >/dev/null 2>&1 || true
fi

status=0
go run ./examples/redis/buildimage || status=$?
case $status in
0) ;;
3) echo "run.sh: no Docker engine answers: tasks will run redis-server as processes" ;;
*) echo "run.sh: building the redis:7 image failed (exit $status)" >&2; exit "$status" ;;
esac

exec go run ./examples/redis "$@"
