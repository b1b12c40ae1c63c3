#!/bin/sh
# mkcerts.sh DIR - the benchmark PKI: for each key type (ec = ECDSA P-256,
# rsa = RSA-2048) a root CA -> intermediate CA -> server and client leaves,
# all signed with SHA-256 by a CA of the same key type.
#
# DIR/TYPE/root.pem            trust anchor (every proxy verifies clients to it)
# DIR/TYPE/server-chain.pem    server leaf + intermediate
# DIR/TYPE/server.key          server key (0600)
# DIR/TYPE/server-combined.pem key + leaf + intermediate (haproxy, hitch)
# DIR/TYPE/client-chain.pem    client leaf + intermediate; client.key
# DIR/ec/clients/NNNN-chain.pem + NNNN.key  N more ECDSA client leaves (second
#                              argument): N distinct devices for loadgen --clients
# Idempotent: an existing DIR/TYPE/client.key means that type is done, an
# existing DIR/ec/clients/NNNN.key (NNNN = N) that the clients are.
set -eu
DIR=${1:?usage: mkcerts.sh DIR [N]}
NCLIENTS=${2:-0}
mkdir -p "$DIR"

newkey() { # TYPE OUT
	if [ "$1" = ec ]; then
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" 2>/dev/null
	else
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" 2>/dev/null
	fi
	chmod 600 "$2"
}

for t in ec rsa; do
	d="$DIR/$t"
	[ -f "$d/client.key" ] && continue
	mkdir -p "$d"
	cat > "$d/ext.cnf" <<CNF
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[int]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature$( [ $t = rsa ] && echo ", keyEncipherment")
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:modality.bench.example, URI:urn:bench:client
authorityKeyIdentifier = keyid
CNF
	newkey $t "$d/root.key"
	openssl req -new -x509 -key "$d/root.key" -sha256 -days 3650 -subj "/O=zonegate bench/CN=bench root $t" \
		-extensions ca -config "$d/ext.cnf" -out "$d/root.pem" 2>/dev/null
	newkey $t "$d/int.key"
	openssl req -new -key "$d/int.key" -subj "/O=zonegate bench/CN=bench intermediate $t" -out "$d/int.csr"
	openssl x509 -req -in "$d/int.csr" -CA "$d/root.pem" -CAkey "$d/root.key" -CAcreateserial -sha256 \
		-days 3650 -extfile "$d/ext.cnf" -extensions int -out "$d/int.pem" 2>/dev/null
	for leaf in server client; do
		newkey $t "$d/$leaf.key"
		openssl req -new -key "$d/$leaf.key" -subj "/O=zonegate bench/CN=$leaf.bench.example" -out "$d/$leaf.csr"
		openssl x509 -req -in "$d/$leaf.csr" -CA "$d/int.pem" -CAkey "$d/int.key" -CAcreateserial -sha256 \
			-days 825 -extfile "$d/ext.cnf" -extensions $leaf -out "$d/$leaf.crt" 2>/dev/null
		cat "$d/$leaf.crt" "$d/int.pem" > "$d/$leaf-chain.pem"
	done
	cat "$d/server.key" "$d/server.crt" "$d/int.pem" > "$d/server-combined.pem"
	chmod 600 "$d/server-combined.pem"
	rm -f "$d"/*.csr "$d"/*.srl
	openssl verify -CAfile "$d/root.pem" -untrusted "$d/int.pem" "$d/client.crt" "$d/server.crt" >/dev/null
done

# N distinct ECDSA client leaves under the ec intermediate.
d="$DIR/ec"
c="$d/clients"
last=$(printf '%04d' "$NCLIENTS")
if [ "$NCLIENTS" -gt 0 ] && [ ! -f "$c/$last.key" ]; then
	mkdir -p "$c"
	for i in $(seq 1 "$NCLIENTS"); do
		n=$(printf '%04d' "$i")
		[ -f "$c/$n.key" ] && continue
		newkey ec "$c/$n.key"
		openssl req -new -key "$c/$n.key" -subj "/O=zonegate bench/CN=device-$n.bench.example" -out "$c/$n.csr"
		openssl x509 -req -in "$c/$n.csr" -CA "$d/int.pem" -CAkey "$d/int.key" -CAcreateserial -sha256 \
			-days 825 -extfile "$d/ext.cnf" -extensions client -out "$c/$n.crt" 2>/dev/null
		cat "$c/$n.crt" "$d/int.pem" > "$c/$n-chain.pem"
		rm -f "$c/$n.csr" "$c/$n.crt"
	done
	rm -f "$d"/*.srl
fi
