#!/usr/bin/env bash
# A remote module over ssh, as users reach a token on another machine: Debian's OpenSSH server
# on loopback (its own config, host key, client key and a high port, all in a temporary
# directory, started and stopped here) and
#   remote: |ssh -T -p PORT -i KEY ... 127.0.0.1 env SOFTHSM2_CONF=... p11-kit remote libsofthsm2.so
# p11proxy lists the token, generates an EC key and signs through it; SoftHSM2 directly
# verifies the signature; no ssh is left running afterwards.
#   Tests/integration/test_remote_ssh.sh       # PROXY_SO, KEEP=1
set -uo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools ssh ssh-keygen p11-kit softhsm2-util pkcs11-tool openssl timeout || exit 1
SSHD=/usr/sbin/sshd
[[ -x $SSHD ]] || { echo "error: $SSHD missing (apt-get install openssh-server)" >&2; exit 1; }
unset P11PROXY_MODULE P11PROXY_CONFIG_DIR P11PROXY_LOG_CALLS P11PROXY_LOG_FILE P11PROXY_LOG_FORMAT P11PROXY_LOG_SECRETS

SSHD_PID=
cleanup() {
    [[ -n $SSHD_PID ]] && kill "$SSHD_PID" 2>/dev/null
    wait 2>/dev/null
    remove_work_dir
}
make_work_dir ssh
trap cleanup EXIT
require_softhsm_and_proxy

make_softhsm_token "$WORK/hsm" ssh-token 12345678 1234 || { fail "SoftHSM2 token"; finish; }
HSM_CONF=$SOFTHSM2_CONF
unset SOFTHSM2_CONF

# The server: a port nobody listens on, keys and config of its own, no PAM, keys only.
PORT=
for _ in $(seq 20); do
    candidate=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then PORT=$candidate; break; fi
done
[[ -n $PORT ]] || { fail "a free port for sshd"; finish; }
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
chmod 600 "$WORK/authorized_keys"
cat >"$WORK/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $WORK/host_key
AuthorizedKeysFile $WORK/authorized_keys
PidFile $WORK/sshd.pid
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
CONF
mkdir -p /run/sshd
"$SSHD" -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
SSHD_PID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

SSH_ARGS="-T -p $PORT -i $WORK/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
check_run "ssh to the test server works" ssh-echo timeout 30 ssh $SSH_ARGS "$(id -un)@127.0.0.1" echo ready
CONF=$WORK/conf
mkdir -p "$CONF/modules"
printf 'remote: |ssh %s %s@127.0.0.1 env SOFTHSM2_CONF=%s p11-kit remote %s\n' \
    "$SSH_ARGS" "$(id -un)" "$HSM_CONF" "$SOFTHSM_SO" >"$CONF/modules/signer.module"

proxy() { P11PROXY_CONFIG_DIR=$CONF timeout 120 pkcs11-tool --module "$PROXY_SO" "$@"; }
run list proxy -L
check_eq "the token on the other side of ssh is listed" "ssh-token" "$(sed -n 's/^  token label *: //p' "$RUN_DIR/list.out" | head -1)"
T=(--token-label ssh-token --login --pin 1234)
check_run "EC key pair generated over ssh" keygen proxy "${T[@]}" --keypairgen --key-type EC:prime256v1 --id 07 --label over-ssh
head -c 32 /dev/urandom >"$WORK/digest"
check_run "ECDSA signature over ssh" sign proxy "${T[@]}" --sign -m ECDSA --id 07 -i "$WORK/digest" -o "$WORK/sig"
check_run "SoftHSM2 directly verifies it" verify env SOFTHSM2_CONF="$HSM_CONF" timeout 60 pkcs11-tool --module "$SOFTHSM_SO" \
    "${T[@]}" --verify -m ECDSA --id 07 -i "$WORK/digest" --signature-file "$WORK/sig"
check_eq "no ssh left running after the process finalised" "" "$(pgrep -f "ssh $SSH_ARGS" || true)"
finish
