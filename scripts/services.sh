#!/usr/bin/env bash
# Make sure the services the integration tests use are up; start the ones that are down.
# Only services this script starts are started; nothing is ever stopped here.
set -u

up() { "$@" >/dev/null 2>&1; }

ensure() {
  local name=$1 check=$2 start=$3
  if up bash -c "$check"; then echo "services: $name is up"; return 0; fi
  echo "services: $name is down; starting it"
  bash -c "$start" >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do
    if up bash -c "$check"; then echo "services: $name started"; return 0; fi
    sleep 1
  done
  echo "services: $name did not start (the tests that need it will fail under CI=true)" >&2
  return 0
}

ensure PostgreSQL "pg_isready -h 127.0.0.1 -q" \
  'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'
ensure MariaDB "mariadb-admin ping" \
  "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
ensure Redis "redis-cli ping | grep -q PONG" \
  'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
ensure RabbitMQ "rabbitmqctl -q status" \
  "rabbitmq-server -detached && rabbitmqctl await_startup"
