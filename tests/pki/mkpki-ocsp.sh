#!/bin/bash
# mkpki-ocsp.sh OUTDIR URL - a PKI for the OCSP tests (test_ocsp.py), with an
# `openssl ca` database that `openssl ocsp -index` answers from:
#   root.pem                 EC P-256 root (the trust anchor)
#   int.pem/.key, index.txt  the issuing CA and its database
#   responder.pem/.key       a delegated responder of int (id-kp-OCSPSigning)
#   NAME.pem/.key/.chain.pem leaves below int, AIA OCSP = URL:
#     good     in the database, valid
#     revoked  in the database, revoked (keyCompromise)
#     unknown  issued by int but missing from the database
#     server   the gateway's own certificate (serverAuth + clientAuth)
# Each leaf carries both EKUs and SANs localhost/127.0.0.1, so it passes the
# gateway's certificate rules as a client or a server.
set -euo pipefail

out=${1:?usage: mkpki-ocsp.sh OUTDIR URL}
url=${2:?usage: mkpki-ocsp.sh OUTDIR URL}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$out"
mkdir -p new

utc() { date -u -d "$1" +%y%m%d%H%M%SZ; }
START=$(utc '-1 day')
END=$(utc '+300 days')
CA_START=$(utc '-2 days')
CA_END=$(utc '+600 days')

cat >ca.cnf <<'CNF'
[ca]
default_ca = ca_any
[ca_any]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
organizationName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
CNF
export OPENSSL_CONF="$out/ca.cnf"

cat >ca.ext <<'EXT'
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EXT
cat >leaf.ext <<EXT
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityInfoAccess = OCSP;URI:$url
EXT
cat >responder.ext <<'EXT'
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = OCSPSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EXT

newkey() { (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-pkeyopt ec_param_enc:named_curve -out "$1.key" 2>/dev/null); }
csr() { openssl req -new -key "$1.key" -subj "/O=zonegate ocsp test/CN=$1" -out "$1.csr"; }

# the root signs itself and int with a throw-away database; int's is index.txt
: >root-index.txt
openssl rand -hex 16 >serial
newkey root
csr root
openssl x509 -req -in root.csr -signkey root.key -days 600 -sha256 -extfile ca.ext \
	-out root.pem 2>/dev/null
newkey int
csr int
openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 600 -sha256 \
	-extfile ca.ext -out int.pem 2>/dev/null
: >index.txt
issue() {
	openssl ca -batch -notext -cert int.pem -keyfile int.key -startdate "$START" \
		-enddate "$END" -extfile "$2" -in "$1.csr" -out "$1.pem" 2>/dev/null
	cat "$1.pem" int.pem >"$1.chain.pem"
}
for n in responder good revoked unknown server; do
	newkey "$n"
	csr "$n"
	if [ "$n" = responder ]; then issue "$n" responder.ext; else issue "$n" leaf.ext; fi
done
openssl ca -revoke revoked.pem -keyfile int.key -cert int.pem -crl_reason keyCompromise 2>/dev/null
# "unknown": issued by int, but the database never heard of it
serial=$(openssl x509 -in unknown.pem -noout -serial | cut -d= -f2)
grep -v "	$serial	" index.txt >index.tmp && mv index.tmp index.txt
chmod 0644 ./*.pem
