#!/bin/bash
# mkpki-policy.sh OUTDIR - certificates for the certificate-policy tests:
# compliant leaves of each allowed key type and one leaf per rule violation.
#
# Made with the openssl CLI at run time, nothing committed. Standalone (does
# not need mkpki.sh). Hierarchy: root (RSA-2048, self-signed) -> int (RSA-2048)
# -> leaves; extra intermediates below the root for the CRL cases
# (int-stale: CRL past nextUpdate, int-nocrl: no CRL at all, int-badcrl: its
# CRL signed by an impostor key of the same name), int-dsa (a DSA key, which
# the policy refuses in any certificate of a chain) and a chain of five
# intermediates for the depth rule. Leaves carry serverAuth+clientAuth
# and SANs DNS:localhost, DNS:policy.zonegate.test, IP:127.0.0.1, so each
# can be presented in both directions.
#
# OUTDIR layout:
#   root.pem                  the trust anchor
#   crls.pem                  every CRL (root, int with bad-revoked revoked,
#                             int-stale's stale CRL, int-badcrl's forged one,
#                             int-dsa's; none for int-nocrl)
#   NAME.pem NAME.key         leaf and key (0600)
#   NAME.chain.pem            leaf followed by its intermediates (no root)
#   manifest.txt              "NAME EXPECTED_REASON TLS" per leaf: the first
#                             reason the policy reports for it as a client or
#                             server certificate ("ok" for compliant ones), and
#                             the TLS version a peer can present it with
#                             ("any", or "1.2" where TLS 1.3 has no signature
#                             scheme for the key)
# Idempotent: a complete OUTDIR of this version made less than a day ago is
# kept (the time-relative leaves, e.g. bad-notyet, stay what they claim).
set -euo pipefail

PKI_VERSION=2
out=${1:?usage: mkpki-policy.sh OUTDIR}
marker="$out/.complete"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$PKI_VERSION" ] &&
	[ -n "$(find "$marker" -mmin -1440)" ]; then
	exit 0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

utc() { date -u -d "$1" +%y%m%d%H%M%SZ; }
START=$(utc '-1 day')
END=$(utc '+30 days')
CA_START=$(utc '-2 days')
CA_END=$(utc '+60 days')
SAN="DNS:localhost,DNS:policy.zonegate.test,IP:127.0.0.1,IP:::1"

cat >"$work/ca.cnf" <<'CNF'
[ca]
default_ca = ca_any
[ca_any]
dir = $ENV::CADIR
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
preserve = yes
[policy_any]
commonName = supplied
organizationName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[crl_ext]
authorityKeyIdentifier = keyid:always
CNF
export OPENSSL_CONF="$work/ca.cnf" CADIR="$work"

# ext NAME LINES...: an extension file section "ext" in $work/NAME.ext
ext() {
	local name=$1
	shift
	printf '[ext]\n' >"$work/$name.ext"
	printf '%s\n' "$@" >>"$work/$name.ext"
}

newkey() {
	local spec=$1 file=$2
	(
		umask 077
		case $spec in
		rsa*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${spec#rsa}" -out "$file" ;;
		dsa) openssl genpkey -paramfile "$work/dsa.param" -out "$file" ;;
		ed25519) openssl genpkey -algorithm ED25519 -out "$file" ;;
		*) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$spec" \
			-pkeyopt ec_param_enc:named_curve -out "$file" ;;
		esac
	) 2>/dev/null
}

cadir() {
	mkdir -p "$work/ca-$1/new"
	: >"$work/ca-$1/index.txt"
	openssl rand -hex 16 >"$work/ca-$1/serial"
	echo 01 >"$work/ca-$1/crlnumber"
}

# issue ISSUER NAME EXTNAME [MD START END]: sign $work/NAME.csr ("-" EXTNAME:
# no extensions, which makes an X.509 v1 certificate).
issue() {
	local issuer=$1 name=$2 extn=$3 md=${4:-sha256} start=${5:-$START} end=${6:-$END}
	local extargs=()
	[ "$extn" = "-" ] || extargs=(-extfile "$work/$extn.ext" -extensions ext)
	CADIR="$work/ca-$issuer" openssl ca -batch -notext -cert "$work/$issuer.pem" \
		-keyfile "$work/$issuer.key" -md "$md" -startdate "$start" -enddate "$end" \
		"${extargs[@]}" -in "$work/$name.csr" -out "$work/$name.pem" 2>/dev/null
}

csr() {
	openssl req -new -key "$work/$1.key" -subj "/O=zonegate policy test/CN=$1" \
		-out "$work/$1.csr" 2>/dev/null
}

ext ca "basicConstraints = critical, CA:true" "keyUsage = critical, keyCertSign, cRLSign" \
	"subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid:always"
LEAF_BASE=("basicConstraints = critical, CA:false" "subjectKeyIdentifier = hash"
	"authorityKeyIdentifier = keyid:always" "subjectAltName = $SAN")
ext leaf "${LEAF_BASE[@]}" "keyUsage = critical, digitalSignature" \
	"extendedKeyUsage = serverAuth, clientAuth"
ext leaf-rsa "${LEAF_BASE[@]}" "keyUsage = critical, digitalSignature, keyEncipherment" \
	"extendedKeyUsage = serverAuth, clientAuth"

# root
cadir root
newkey rsa2048 "$work/root.key"
csr root
CADIR="$work/ca-root" openssl ca -batch -notext -selfsign -keyfile "$work/root.key" \
	-startdate "$CA_START" -enddate "$CA_END" -extfile "$work/ca.ext" -extensions ext \
	-in "$work/root.csr" -out "$work/root.pem" 2>/dev/null

# mkca NAME ISSUER [KEYSPEC]: an intermediate CA.
mkca() {
	cadir "$1"
	newkey "${3:-rsa2048}" "$work/$1.key"
	csr "$1"
	issue "$2" "$1" ca sha256 "$CA_START" "$CA_END"
}
mkca int root
mkca int-stale root
mkca int-nocrl root
mkca int-badcrl root
prev=root
for i in 1 2 3 4 5; do
	mkca "deep$i" "$prev"
	prev="deep$i"
done

manifest="$work/manifest.txt"
: >"$manifest"
# leaf NAME KEYSPEC ISSUER EXT EXPECT TLS [MD START END]
leaf() {
	local name=$1 spec=$2 issuer=$3 extn=$4 expect=$5 tls=$6
	shift 6
	newkey "$spec" "$work/$name.key"
	csr "$name"
	issue "$issuer" "$name" "$extn" "$@"
	local chain=$issuer c="$work/$name.pem"
	cp "$c" "$work/$name.chain.pem"
	while [ "$chain" != root ]; do
		cat "$work/$chain.pem" >>"$work/$name.chain.pem"
		chain=$(sed -n "s/^$chain //p" "$work/parents")
	done
	echo "$name $expect $tls" >>"$manifest"
}
{
	echo "int root"
	echo "int-stale root"
	echo "int-nocrl root"
	echo "int-badcrl root"
	echo "int-dsa root"
	echo "deep1 root"
	for i in 2 3 4 5; do echo "deep$i deep$((i - 1))"; done
} >"$work/parents"

openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 \
	-out "$work/dsa.param" 2>/dev/null
mkca int-dsa root dsa

# compliant
leaf ok-rsa2048 rsa2048 int leaf-rsa ok any
leaf ok-rsa3072-sha384 rsa3072 int leaf-rsa ok any sha384
leaf ok-p256 P-256 int leaf ok any
leaf ok-p384 P-384 int leaf ok any
leaf ok-ed25519 ed25519 int leaf ok any

# one violation each
leaf bad-v1 P-256 int - cert_not_v3 any
leaf bad-sha1 P-256 int leaf cert_weak_signature_hash any sha1
leaf bad-md5 rsa2048 int leaf-rsa cert_weak_signature_hash any md5
leaf bad-rsa1024 rsa1024 int leaf-rsa cert_weak_rsa_key any
leaf bad-secp256k1 secp256k1 int leaf cert_ec_curve_not_allowed 1.2
leaf bad-brainpool brainpoolP256r1 int leaf cert_ec_curve_not_allowed 1.2
leaf bad-dsa dsa int leaf cert_key_type_not_allowed 1.2
leaf bad-issuer-self-signed P-256 root leaf cert_issuer_self_signed any
ext leaf-ca "basicConstraints = critical, CA:true" "subjectKeyIdentifier = hash" \
	"authorityKeyIdentifier = keyid:always" "subjectAltName = $SAN" \
	"keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth, clientAuth"
leaf bad-leaf-ca P-256 int leaf-ca cert_leaf_is_ca any
ext leaf-eku "${LEAF_BASE[@]}" "keyUsage = critical, digitalSignature" \
	"extendedKeyUsage = emailProtection"
leaf bad-eku P-256 int leaf-eku cert_eku_missing any
ext leaf-ku "${LEAF_BASE[@]}" "keyUsage = critical, digitalSignature, keyEncipherment" \
	"extendedKeyUsage = serverAuth, clientAuth"
leaf bad-key-usage P-256 int leaf-ku cert_key_usage_mismatch any
leaf bad-deep P-256 deep5 leaf cert_chain_too_deep any
leaf bad-expired P-256 int leaf cert_expired any sha256 "$(utc '-40 days')" "$(utc '-10 days')"
leaf bad-notyet P-256 int leaf cert_not_yet_valid any sha256 "$(utc '+10 days')" "$(utc '+40 days')"
leaf bad-revoked P-256 int leaf cert_revoked any
leaf bad-crl-stale P-256 int-stale leaf crl_stale any
ext leaf-cdp "${LEAF_BASE[@]}" "keyUsage = critical, digitalSignature" \
	"extendedKeyUsage = serverAuth, clientAuth" \
	"crlDistributionPoints = URI:http://crl.zonegate.test/int-nocrl.crl"
leaf bad-crl-missing P-256 int-nocrl leaf-cdp crl_missing any
leaf bad-crl-invalid P-256 int-badcrl leaf crl_invalid any
leaf bad-int-dsa P-256 int-dsa leaf cert_key_type_not_allowed any

# CRLs: int revokes bad-revoked; int-stale's CRL was due
# yesterday; int-nocrl publishes none.
gencrl() {
	CADIR="$work/ca-$1" openssl ca -gencrl -cert "$work/$1.pem" -keyfile "$work/$1.key" \
		-crlexts crl_ext "${@:3}" -out "$2" 2>/dev/null
}
CADIR="$work/ca-int" openssl ca -revoke "$work/bad-revoked.pem" -cert "$work/int.pem" \
	-keyfile "$work/int.key" -crl_reason keyCompromise 2>/dev/null
gencrl int-stale "$work/int-stale.crl.pem" -crl_lastupdate "$(utc '-3 days')" \
	-crl_nextupdate "$(utc '-1 day')"
gencrl root "$work/root.crl.pem"
gencrl int "$work/int.crl.pem"
gencrl int-dsa "$work/int-dsa.crl.pem"
# int-badcrl's CRL comes from an impostor: same name, another key (and no
# authorityKeyIdentifier, so it is found by name and fails its signature)
openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$work/impostor.key" -days 30 \
	-subj "/CN=int-badcrl/O=zonegate policy test" -out "$work/impostor.pem" 2>/dev/null
CADIR="$work/ca-int-badcrl" openssl ca -gencrl -cert "$work/impostor.pem" \
	-keyfile "$work/impostor.key" -out "$work/int-badcrl.crl.pem" 2>/dev/null
rm -f "$work/impostor.pem" "$work/impostor.key"
for i in 1 2 3 4 5; do gencrl "deep$i" "$work/deep$i.crl.pem"; done
cat "$work/root.crl.pem" "$work/int.crl.pem" "$work/int-stale.crl.pem" "$work"/deep?.crl.pem \
	"$work/int-badcrl.crl.pem" "$work/int-dsa.crl.pem" >"$work/crls.pem"

# Sanity: compliant leaves verify; the stale CRL really is stale.
for n in ok-rsa2048 ok-rsa3072-sha384 ok-p256 ok-p384 ok-ed25519; do
	openssl verify -CAfile "$work/root.pem" -untrusted "$work/$n.chain.pem" "$work/$n.pem" >/dev/null
done
if openssl verify -crl_check -CAfile "$work/root.pem" -untrusted "$work/int-stale.pem" \
	-CRLfile "$work/crls.pem" "$work/bad-crl-stale.pem" >/dev/null 2>&1; then
	echo "mkpki-policy: int-stale CRL is not stale" >&2
	exit 1
fi

chmod 0644 "$work"/*.pem
chmod 0600 "$work"/*.key
rm -f "$work"/*.csr "$work"/*.ext "$work"/*.param
# nothing of an older run may survive next to the new hierarchy
rm -f "$out"/*.pem "$out"/*.key "$out/manifest.txt"
for f in "$work"/*.pem "$work"/*.key "$manifest"; do
	mv -f "$f" "$out/"
done
echo "$PKI_VERSION" >"$marker"
