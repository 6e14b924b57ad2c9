#!/bin/sh
# mpirun's remote-shell agent for the simulated machines of run.sh (instead of ssh): `netns_agent.sh [ssh
# options] HOST COMMAND...` runs COMMAND in the network namespace whose veth end has HOST's address, so Open
# MPI starts its daemon there as it would on another machine over ssh.
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
host=$1
shift
case $host in
10.99.7.1) ns=bfs0 ;;
10.99.7.2) ns=bfs1 ;;
*) echo "netns_agent.sh: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" sh -c "$*"
