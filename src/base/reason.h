/* reason.h - stable reason codes for every verdict zonegate takes.
 *
 * Every refusal, close and configuration error names one of these codes.
 * The code string (second column) is part of the operator interface: logs,
 * audit records and metrics carry it, so it never changes once released.
 * The class tells the caller what to do; the code tells the operator why.
 */
#ifndef ZG_REASON_H
#define ZG_REASON_H

enum zg_class {
	ZG_CL_OK,       /* nothing wrong */
	ZG_CL_IO,       /* socket error: close */
	ZG_CL_CLOSED,   /* orderly end of a stream */
	ZG_CL_TIMEOUT,  /* a deadline passed */
	ZG_CL_LIMIT,    /* a configured limit was reached */
	ZG_CL_ALERT,    /* TLS failure: peer gets an alert */
	ZG_CL_PROTO,    /* peer broke a protocol */
	ZG_CL_POLICY,   /* denied by policy */
	ZG_CL_INTERNAL, /* our bug or resource exhaustion */
};

/* X(ENUM, class, "code", "what it means") - add new codes at the end of a
 * group; never renumber or rename a released code. */
#define ZG_REASONS(X)                                                                  \
	X(OK, OK, "ok", "no error")                                                     \
	/* connection lifecycle */                                                      \
	X(CLIENT_CLOSED, CLOSED, "client_closed", "client closed the connection")       \
	X(UPSTREAM_CLOSED, CLOSED, "upstream_closed", "upstream closed the connection") \
	X(CLIENT_RESET, IO, "client_io_error", "socket error on the client side")       \
	X(UPSTREAM_RESET, IO, "upstream_io_error", "socket error on the upstream side") \
	X(SHUTDOWN, CLOSED, "shutdown", "gateway stopped before the connection ended")  \
	X(DRAIN_DEADLINE, TIMEOUT, "drain_deadline", "drain deadline passed")           \
	X(HANDSHAKE_TIMEOUT, TIMEOUT, "handshake_timeout",                              \
	  "TLS handshake not complete within handshake_timeout")                        \
	X(IDLE_TIMEOUT, TIMEOUT, "idle_timeout", "no data either way within idle_timeout") \
	X(CONNECT_TIMEOUT, TIMEOUT, "upstream_connect_timeout",                        \
	  "upstream did not accept within connect_timeout")                             \
	X(CONNECT_FAILED, IO, "upstream_connect_failed", "upstream refused or unreachable") \
	X(UPSTREAM_UNRESOLVED, IO, "upstream_unresolved", "upstream host name has no address") \
	X(CLIENT_TRUNCATED, IO, "client_truncated",                                     \
	  "client ended its TLS stream with a TCP FIN but no close_notify")           \
	X(UPSTREAM_TRUNCATED, IO, "upstream_truncated",                                 \
	  "upstream ended its TLS stream with a TCP FIN but no close_notify")         \
	X(UPSTREAM_LOST_AFTER_PAYLOAD, IO, "upstream_lost_after_payload",               \
	  "upstream failed after client payload reached it; not replayed on another endpoint") \
	X(OPERATOR_CLOSED, CLOSED, "operator_closed", "closed by an operator (zonegate ctl kill)") \
	/* active health checks of upstream endpoints (upstream/check.c) */             \
	X(CHECK_TIMEOUT, TIMEOUT, "health_check_timeout",                               \
	  "health check got no complete reply within health_timeout")                  \
	X(CHECK_BAD_REPLY, PROTO, "health_check_bad_reply",                             \
	  "health check reply was malformed, oversized or of the wrong protocol")      \
	X(CHECK_REJECTED, PROTO, "health_check_rejected",                               \
	  "health check reply was a refusal: association rejected, C-ECHO status, ACK code or HTTP status") \
	/* limits */                                                                    \
	X(ROUTE_LIMIT, LIMIT, "route_max_connections", "route max_connections reached") \
	X(GLOBAL_LIMIT, LIMIT, "global_max_connections", "gateway max_connections reached") \
	X(NO_MEMORY, INTERNAL, "no_memory", "out of memory")                            \
	X(AUDIT_SPOOL_FULL, LIMIT, "audit_spool_full",                                  \
	  "audit spool full and full_policy is refuse-new-connections")                 \
	X(LOCAL_FD_EXHAUSTED, LIMIT, "local_fd_exhausted",                             \
	  "gateway out of file descriptors (RLIMIT_NOFILE, LimitNOFILE)")               \
	X(CLASS_LIMIT, LIMIT, "class_max_connections",                                  \
	  "traffic class max_connections reached")                                      \
	X(KEY_PROCESS_UNAVAILABLE, INTERNAL, "key_process_unavailable",                \
	  "the key process did not sign (it died or did not answer): the handshake failed closed") \
	/* channel (address) layer */                                                   \
	X(ADDR_NOT_ALLOWED, POLICY, "source_not_allowed",                               \
	  "source address not in the route's allow_from prefixes")                      \
	/* TLS layer */                                                                 \
	X(TLS_VERSION, ALERT, "tls_version", "peer offered no TLS version the profile allows") \
	X(TLS_CIPHER, ALERT, "tls_no_shared_cipher", "no cipher suite or group in common with the profile") \
	X(TLS_NO_PEER_CERT, ALERT, "tls_no_client_certificate", "peer presented no certificate") \
	X(TLS_UNTRUSTED, ALERT, "tls_untrusted_chain",                                   \
	  "certificate chain does not verify to a trust anchor")                        \
	X(TLS_CERT_EXPIRED, ALERT, "cert_expired", "certificate expired")               \
	X(TLS_CERT_NOT_YET_VALID, ALERT, "cert_not_yet_valid", "certificate not yet valid") \
	X(TLS_CERT_REVOKED, ALERT, "cert_revoked", "certificate revoked by a CRL")      \
	X(TLS_NAME_MISMATCH, ALERT, "tls_server_name_mismatch",                         \
	  "server certificate has no DNS or URI SAN matching server_name")              \
	X(TLS_PROTOCOL, ALERT, "tls_handshake_failed", "TLS handshake failed")          \
	X(TLS_PEER_ALERT, ALERT, "tls_peer_alert", "peer sent a fatal TLS alert")       \
	X(TLS_NOT_TLS, PROTO, "tls_not_tls", "peer did not speak TLS")                  \
	X(TLS_TOO_LARGE, PROTO, "tls_message_too_large",                                \
	  "peer announced a handshake message larger than the certificate size rule allows") \
	/* certificate policy (policy.c; see docs/policy.md) */                         \
	X(CERT_NOT_V3, ALERT, "cert_not_v3", "certificate is not X.509 version 3")       \
	X(CERT_WEAK_SIG_HASH, ALERT, "cert_weak_signature_hash",                        \
	  "certificate signed with a hash weaker than SHA-256 (SHA-1, MD5)")           \
	X(CERT_WEAK_RSA_KEY, ALERT, "cert_weak_rsa_key", "RSA key shorter than the profile minimum") \
	X(CERT_EC_CURVE, ALERT, "cert_ec_curve_not_allowed",                            \
	  "EC key on a curve other than P-256, P-384, P-521")                          \
	X(CERT_EDDSA, ALERT, "cert_eddsa_not_allowed", "EdDSA key and the profile does not allow it") \
	X(CERT_KEY_TYPE, ALERT, "cert_key_type_not_allowed", "public key type not RSA, EC or EdDSA") \
	X(CERT_ISSUER_SELF_SIGNED, ALERT, "cert_issuer_self_signed",                    \
	  "end-entity certificate issued directly by a self-signed CA")                \
	X(CERT_LEAF_IS_CA, ALERT, "cert_leaf_is_ca", "end-entity certificate is a CA")   \
	X(CERT_EKU_MISSING, ALERT, "cert_eku_missing",                                  \
	  "extended key usage lacks clientAuth/serverAuth for the certificate's role") \
	X(CERT_KEY_USAGE, ALERT, "cert_key_usage_mismatch",                             \
	  "keyUsage inconsistent with the key type or the certificate's role")         \
	X(CERT_CHAIN_TOO_DEEP, ALERT, "cert_chain_too_deep",                             \
	  "more certificates below the anchor than verify_depth")                       \
	X(CERT_NAME_CONTROL, ALERT, "cert_name_control_char",                           \
	  "a subject or SAN value holds NUL or another control character")             \
	X(CERT_TOO_LARGE, ALERT, "cert_too_large",                                      \
	  "a certificate's DER encoding is larger than the size rule allows")          \
	X(CRL_STALE, ALERT, "crl_stale", "the issuer's CRL is past its nextUpdate")     \
	X(CRL_MISSING, ALERT, "crl_missing", "no CRL loaded for a CA that requires one") \
	X(CRL_INVALID, ALERT, "crl_invalid", "a CRL for the issuer does not verify with its key") \
	X(CERT_OCSP_REVOKED, ALERT, "cert_ocsp_revoked",                                \
	  "the issuer's OCSP responder says the certificate is revoked")               \
	X(CERT_OCSP_UNKNOWN, ALERT, "cert_ocsp_unknown",                                \
	  "the issuer's OCSP responder does not know the certificate")                 \
	X(CERT_OCSP_UNAVAILABLE, ALERT, "cert_ocsp_unavailable",                        \
	  "no valid OCSP answer (responder down, bad or stale response) under ocsp = hard") \
	/* participant directory: binding of addresses to certificate identities */    \
	X(DIR_UNKNOWN_ADDR, POLICY, "directory_unknown_address",                       \
	  "address belongs to no participant of the directory")                        \
	X(DIR_IDENTITY_MISMATCH, POLICY, "directory_identity_mismatch",                \
	  "certificate belongs to another participant than the address, or to none")   \
	X(DIR_PEER_NOT_ALLOWED, POLICY, "directory_peer_not_allowed",                  \
	  "participant is not in the route's peers")                                   \
	X(DIR_STALE, POLICY, "directory_stale", "directory in force has expired")      \
	X(DIR_PARTICIPANT_LIMIT, LIMIT, "directory_participant_limit",                 \
	  "participant's max_connections reached")                                     \
	X(DIR_UNREADABLE, INTERNAL, "directory_unreadable",                            \
	  "directory, signature or public key file cannot be read")                    \
	X(DIR_UNSIGNED, INTERNAL, "directory_unsigned", "directory has no signature")  \
	X(DIR_BAD_SIGNATURE, INTERNAL, "directory_bad_signature",                      \
	  "directory signature does not verify with the configured public key")        \
	X(DIR_MALFORMED, INTERNAL, "directory_malformed",                              \
	  "directory is not valid JSON of the expected format")                        \
	X(DIR_EXPIRED, INTERNAL, "directory_expired", "directory is past its expires time") \
	X(DIR_NOT_YET_VALID, INTERNAL, "directory_not_yet_valid",                      \
	  "directory issued_at lies in the future")                                    \
	X(DIR_ROLLBACK, INTERNAL, "directory_rollback",                                \
	  "directory serial is older than the one in force, or reused for other content") \
	/* clinical protocol inspection (proto/; docs/protocols.md) */                  \
	X(DICOM_MALFORMED, PROTO, "dicom_malformed",                                    \
	  "DICOM PDU malformed or out of bounds; answered with A-ABORT")               \
	X(DICOM_UNEXPECTED_PDU, PROTO, "dicom_unexpected_pdu",                          \
	  "DICOM PDU type unknown or not valid at that point; answered with A-ABORT")  \
	X(DICOM_PDU_TOO_LARGE, PROTO, "dicom_pdu_too_large",                            \
	  "DICOM PDU length over dicom_max_pdu; answered with A-ABORT")                \
	X(DICOM_PROTOCOL_VERSION, POLICY, "dicom_protocol_version",                     \
	  "A-ASSOCIATE-RQ protocol version without bit 0; A-ASSOCIATE-RJ")             \
	X(DICOM_APP_CONTEXT, POLICY, "dicom_application_context",                       \
	  "A-ASSOCIATE-RQ application context is not DICOM's; A-ASSOCIATE-RJ")        \
	X(DICOM_CALLING_AE, POLICY, "dicom_calling_ae_not_allowed",                     \
	  "calling AE title is not one of the participant's; A-ASSOCIATE-RJ")          \
	X(DICOM_CALLED_AE, POLICY, "dicom_called_ae_not_served",                        \
	  "called AE title is not in the route's dicom_called_ae; A-ASSOCIATE-RJ")     \
	X(DICOM_ABSTRACT_SYNTAX, POLICY, "dicom_abstract_syntax_not_allowed",           \
	  "proposed abstract syntax not in dicom_abstract_syntaxes; RJ if none is, else refused in the AC") \
	X(HL7_MALFORMED, PROTO, "hl7_malformed",                                        \
	  "MLLP framing broken or MSH segment unreadable")                             \
	X(HL7_TOO_LARGE, PROTO, "hl7_message_too_large",                                \
	  "HL7 message longer than hl7_max_message")                                   \
	X(HL7_FACILITY, POLICY, "hl7_facility_not_allowed",                             \
	  "MSH-4 sending facility is not one of the participant's; ACK AR")            \
	X(HL7_MESSAGE_TYPE, POLICY, "hl7_message_type_not_allowed",                     \
	  "MSH-9 message type is not in hl7_message_types; ACK AR")                    \
	/* configuration */                                                             \
	X(CONF_SYNTAX, INTERNAL, "config_error", "configuration rejected")

enum zg_reason {
#define ZG_REASON_ENUM(name, cls, code, text) ZG_R_##name,
	ZG_REASONS(ZG_REASON_ENUM)
#undef ZG_REASON_ENUM
	ZG_R__COUNT
};

/* The stable code string of @r ("tls_version"); "unknown" if out of range. */
const char *zg_reason_code(enum zg_reason r);

/* One line of operator prose for @r. */
const char *zg_reason_text(enum zg_reason r);

/* What the caller should do about @r. */
enum zg_class zg_reason_class(enum zg_reason r);

#endif
