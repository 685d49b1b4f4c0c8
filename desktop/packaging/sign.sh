#!/bin/sh
# sign.sh FILE: Authenticode-sign a Windows executable in place with
# osslsigncode (used by packaging.mk and, through !finalize, by makensis).
#   SIGN_CERT           certificate (PEM or DER), with its chain
#   SIGN_KEY            private key (PEM or DER)
#   SIGN_PASS_FILE      optional: file holding the key's password
#   SIGN_TIMESTAMP_URL  optional: RFC 3161 time-stamp server (needs the
#                       internet; without it the signature is valid only
#                       while the certificate is)
set -eu
file=$1
: "${SIGN_CERT:?set SIGN_CERT}" "${SIGN_KEY:?set SIGN_KEY}"
set -- sign -certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 \
	-n qrlogin -i https://github.com/qrlogin/qrlogin
if [ -n "${SIGN_PASS_FILE:-}" ]; then set -- "$@" -readpass "$SIGN_PASS_FILE"; fi
if [ -n "${SIGN_TIMESTAMP_URL:-}" ]; then set -- "$@" -ts "$SIGN_TIMESTAMP_URL"; fi
tmp=$file.signing
trap 'rm -f "$tmp"' EXIT
osslsigncode "$@" -in "$file" -out "$tmp" >/dev/null
mv "$tmp" "$file"
echo "signed $(basename "$file")"
