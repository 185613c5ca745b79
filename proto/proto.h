/* proto/proto.h: smove's wire formats, the one public header of proto/.
 *
 * proto/ depends on libc, zlib and gnutls only. It holds:
 *   - JSON: a writer for --json output and the control socket's replies, and a
 *     parser for control-socket requests and configuration files (untrusted
 *     input: depth and size are bounded, every error is reported, never trusted);
 *   - the migration protocol (framing, messages, versions, TLS, compression),
 *     documented in docs/protocol.md.
 *
 * Conventions: functions return 0 or a negative errno and, on failure, write a
 * sentence into the caller's buffer `err` of PROTO_ERR_LEN bytes.
 */
#ifndef SMOVE_PROTO_H
#define SMOVE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PROTO_ERR_LEN 512

int proto_error(char *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- JSON writer ------------------------------------------------------------- */

/* Builds one JSON text in memory. Commas and escaping are handled; a failed
 * allocation is remembered and reported by proto_json_finish. */
struct proto_json {
	char *s;
	size_t len, cap;
	bool oom;
	int depth;
	uint64_t need_comma; /* bit d: the container at depth d already has a member */
};

void proto_json_init(struct proto_json *j);
void proto_json_release(struct proto_json *j);
void proto_json_reset(struct proto_json *j);
void proto_json_obj_begin(struct proto_json *j);
void proto_json_obj_end(struct proto_json *j);
void proto_json_arr_begin(struct proto_json *j);
void proto_json_arr_end(struct proto_json *j);
void proto_json_key(struct proto_json *j, const char *key);
void proto_json_str(struct proto_json *j, const char *s);
void proto_json_int(struct proto_json *j, int64_t v);
void proto_json_uint(struct proto_json *j, uint64_t v);
void proto_json_double(struct proto_json *j, double v);
void proto_json_bool(struct proto_json *j, bool v);
void proto_json_null(struct proto_json *j);
/* key: value shorthands inside an object. */
void proto_json_kv_str(struct proto_json *j, const char *key, const char *v);
void proto_json_kv_int(struct proto_json *j, const char *key, int64_t v);
void proto_json_kv_uint(struct proto_json *j, const char *key, uint64_t v);
void proto_json_kv_double(struct proto_json *j, const char *key, double v);
void proto_json_kv_bool(struct proto_json *j, const char *key, bool v);
/* The finished text (NUL-terminated, owned by j), or NULL if memory ran out. */
const char *proto_json_finish(struct proto_json *j);

/* ---- JSON parser ------------------------------------------------------------- */

enum proto_json_type {
	PROTO_JSON_NULL,
	PROTO_JSON_BOOL,
	PROTO_JSON_NUMBER,
	PROTO_JSON_STRING,
	PROTO_JSON_ARRAY,
	PROTO_JSON_OBJECT,
};

struct proto_json_value {
	enum proto_json_type type;
	bool b;
	double num;
	bool is_int; /* the number was written as an integer that fits in int64 */
	int64_t i;
	char *str; /* STRING (NUL-terminated; embedded NULs are refused) */
	/* ARRAY and OBJECT: n items; keys[k] names items[k] in an OBJECT. */
	size_t n;
	struct proto_json_value **items;
	char **keys;
};

#define PROTO_JSON_MAX_DEPTH 32
#define PROTO_JSON_MAX_TEXT  (1u << 20)

/* Parses exactly one JSON value (surrounding white space allowed). */
int proto_json_parse(const char *text, size_t len, struct proto_json_value **out, char *err);
void proto_json_free(struct proto_json_value *v);
/* The member `key` of an object, or NULL (also when v is not an object). */
const struct proto_json_value *proto_json_get(const struct proto_json_value *v, const char *key);
/* Typed member access: -ENOENT when missing, -EINVAL (with a message naming
 * the key) when of another type or out of range. */
int proto_json_get_str(const struct proto_json_value *v, const char *key, const char **out,
		       char *err);
int proto_json_get_u64(const struct proto_json_value *v, const char *key, uint64_t *out, char *err);
int proto_json_get_bool(const struct proto_json_value *v, const char *key, bool *out, char *err);

/* ==== The migration protocol ==================================================
 *
 * Byte layouts, every message's fields and the reasons behind them are in
 * docs/protocol.md; this header is the API. The source (client) connects to
 * the destination (server); all integers on the wire are big-endian.
 *
 * The main connection's conversation (a session of role MIGRATE):
 *
 *   source                                      destination
 *   HELLO (versions, role, session id) ------->
 *          <------------------------------------ HELLO_ACK (version, features, token)
 *   PREFLIGHT (config, disks, CPUID, runtime) ->
 *          <------------------------------------ PREFLIGHT_REPLY (go | no-go + reasons)
 *                                                 no-go: both close, nothing changed
 *          <------------------------------------ DISK_EXPORT x disks (NBD address, PSK)
 *   [mirrors the disks to the exports; extra channels join: HELLO role CHANNEL]
 *   MEM_BATCH* (main and channels), ROUND_END k (per-channel batch counts) ...
 *   [pauses the vCPUs; last round; ROUND_END with PROTO_ROUND_FINAL]
 *   or, for a runtime with its own migration stream (v3, feature STREAM):
 *   STREAM* (offset, bytes), the last with PROTO_STREAM_END (main connection)
 *   VCPU_STATE*, DEVICE_STATE*, STATE_END ---->
 *          <------------------------------------ SWITCHOVER_READY (state loaded,
 *                                                 exports closed, disks opened)
 *   RESUME ----------------------------------->  (from here the source is in doubt)
 *          <------------------------------------ RESUMING (durably recorded)
 *          <------------------------------------ RUNNING (vCPUs run, heartbeat moves)
 *   COMMIT (source VM ended, files deleted) -->
 *          <------------------------------------ DONE
 *
 *   CANCEL (either side, with a reason) ends a session before RESUME; the
 *   destination may still CANCEL until it sends RESUMING (it then never
 *   resumes). ERROR (either side, any time) ends it because of a fault. PING is
 *   answered with PONG by proto_session_recv itself, in every state.
 *
 * The states of a session (the same graph on both sides; each side checks
 * every frame it sends and receives against it):
 *
 *   START -HELLO-> HELLO -HELLO_ACK-> NEGOTIATED (MIGRATE) | CHANNEL | RESOLVE
 *   NEGOTIATED -PREFLIGHT-> PREFLIGHT -PREFLIGHT_REPLY go-> STORAGE   (no-go: CLOSED)
 *   STORAGE -DISK_EXPORT | DEVICE_STATE(source)-> STORAGE
 *   STORAGE -MEM_BATCH | ROUND_END | STREAM-> MEMORY
 *   MEMORY -MEM_BATCH | ROUND_END | STREAM-> MEMORY -VCPU_STATE | DEVICE_STATE-> STATE
 *   MEMORY -STATE_END-> LOADING (a stream carried the whole state)
 *   STATE -VCPU_STATE | DEVICE_STATE-> STATE -STATE_END-> LOADING
 *   LOADING -SWITCHOVER_READY-> READY -RESUME-> IN_DOUBT -RESUMING-> RESUMING
 *   RESUMING -RUNNING-> RUNNING -COMMIT-> COMMITTED -DONE-> CLOSED
 *   CHANNEL -MEM_BATCH-> CHANNEL;  RESOLVE -RESOLVE-> RESOLVING -RESOLVE_REPLY-> CLOSED
 *   STREAM only with feature STREAM, at the offset the receiver counted, never
 *   after its END; a stream begun has its END before VCPU_STATE | DEVICE_STATE |
 *   STATE_END.
 *   before IN_DOUBT: -CANCEL-> CLOSED; IN_DOUBT: CANCEL from the destination only
 *   any: -ERROR-> DEAD; a malformed, unknown, oversized, badly checksummed or
 *   out-of-order frame: the side that sees it sends ERROR (reason) -> DEAD.
 *
 * The rule that keeps one VM: before RESUME is sent any failure rolls back
 * (the source resumes, the destination discards); after RUNNING the
 * destination owns the VM; in between (IN_DOUBT, RESUMING) the source stays
 * paused and later asks with a RESOLVE session: "did you resume <session id>?".
 *
 * Threads: a session (and its connection) is used by one thread at a time;
 * different sessions (channels) are independent. struct proto_rounds is the
 * one shared, locked object.
 */

/* ---- Versions, features, limits ------------------------------------------- */

#define PROTO_VERSION_MIN     1 /* the oldest version a destination accepts */
#define PROTO_VERSION_CURRENT 3

/* Features (HELLO's wanted set, HELLO_ACK's granted set); version 1 has none,
 * version 2 the first three, version 3 adds STREAM. A feature is granted
 * only when the negotiated version has it. */
#define PROTO_FEAT_COMPRESS (1ull << 0) /* MEM_BATCH may be zlib-compressed */
#define PROTO_FEAT_CHANNELS (1ull << 1) /* extra connections carry MEM_BATCH */
/* A dry run: the destination answers PREFLIGHT and creates nothing, whatever
 * its verdict; the source then ends the session with CANCEL. A destination
 * that does not grant it is told the same by a CANCEL after a go. */
#define PROTO_FEAT_DRY_RUN (1ull << 2)
#define PROTO_FEATURES_V2  (PROTO_FEAT_COMPRESS | PROTO_FEAT_CHANNELS | PROTO_FEAT_DRY_RUN)
/* v3: the source may send STREAM (a VM runtime's own migration stream). */
#define PROTO_FEAT_STREAM (1ull << 3)
#define PROTO_FEATURES_V3 (PROTO_FEATURES_V2 | PROTO_FEAT_STREAM)

#define PROTO_FRAME_HDR_LEN 20
#define PROTO_FRAME_MAGIC   0x534d4f56u /* "SMOV" */
#define PROTO_FRAME_MAX	    (32u << 20) /* largest payload, checked before allocation */
#define PROTO_PAGE_SIZE	    4096u
#define PROTO_BATCH_MAX	    4096u /* pages in one MEM_BATCH */
#define PROTO_MAX_CHANNELS  64u	  /* including the main connection */
#define PROTO_ID_LEN	    16	  /* session ids and channel tokens */
#define PROTO_STR_MAX	    4096u /* any string field but the VM config */
#define PROTO_CONFIG_MAX    PROTO_JSON_MAX_TEXT
#define PROTO_LIST_MAX	    4096u /* disks, CPUID entries, reasons */
#define PROTO_PSK_MAX	    64u	  /* bytes of a pre-shared key */
#define PROTO_TIMEOUT_MS    30000 /* default per-frame I/O timeout */

/* Version 3: runtime names and STREAM. */
#define PROTO_RUNTIME_MAX    32u /* bytes of a runtime name */
#define PROTO_STREAM_HDR_LEN 12u /* STREAM's offset and flags */
#define PROTO_STREAM_MAX     (PROTO_FRAME_MAX - PROTO_STREAM_HDR_LEN) /* bytes in one STREAM */
#define PROTO_STREAM_CHUNK   (256u << 10) /* proto_session_send_stream's default frame */

/* Frame flags. */
#define PROTO_FLAG_COMPRESSED 0x0001u /* MEM_BATCH: the page data is a zlib stream */

enum proto_type {
	PROTO_HELLO = 1,
	PROTO_HELLO_ACK = 2,
	PROTO_PREFLIGHT = 3,
	PROTO_PREFLIGHT_REPLY = 4,
	PROTO_DISK_EXPORT = 5,
	PROTO_MEM_BATCH = 6,
	PROTO_ROUND_END = 7,
	PROTO_VCPU_STATE = 8,
	PROTO_DEVICE_STATE = 9,
	PROTO_STATE_END = 10,
	PROTO_SWITCHOVER_READY = 11,
	PROTO_RESUME = 12,
	PROTO_RESUMING = 13,
	PROTO_RUNNING = 14,
	PROTO_COMMIT = 15,
	PROTO_DONE = 16,
	PROTO_CANCEL = 17,
	PROTO_ERROR = 18,
	PROTO_PING = 19,
	PROTO_PONG = 20,
	PROTO_RESOLVE = 21,
	PROTO_RESOLVE_REPLY = 22,
	PROTO_STREAM = 23, /* v3, feature STREAM */
	PROTO_TYPE_END	   /* one past the last type */
};

/* "HELLO", ...; "unknown" for anything else. */
const char *proto_type_name(unsigned type);

/* The source connects and speaks first; the destination listens. */
enum proto_side {
	PROTO_SOURCE,
	PROTO_DEST,
};

enum proto_role {
	PROTO_ROLE_MIGRATE = 1, /* the main connection of a migration */
	PROTO_ROLE_CHANNEL = 2, /* an extra connection carrying MEM_BATCH (v2) */
	PROTO_ROLE_RESOLVE = 3, /* a later question: did you resume session X? */
};

/* ---- Messages ----------------------------------------------------------------
 * Decoded strings and arrays are allocated and freed by proto_msg_release.
 * Byte fields marked "view" point into the received frame: they are valid until
 * the next receive on the same session (copy them to keep them). */

struct proto_hello {
	uint16_t min_version, max_version; /* the sender speaks every version between */
	uint8_t role;			   /* enum proto_role */
	uint16_t channel;		   /* CHANNEL: its index, 1..channels */
	uint64_t features;		   /* wanted (PROTO_FEAT_*) */
	uint8_t session_id[PROTO_ID_LEN];  /* chosen by the source, random */
	uint8_t token[PROTO_ID_LEN];	   /* CHANNEL: the token from HELLO_ACK; else zero */
	char *software;			   /* "smove 0.1.0", for messages */
};

struct proto_hello_ack {
	uint16_t version;		  /* chosen: the highest both speak */
	uint64_t features;		  /* granted: a subset of the wanted ones */
	uint8_t session_id[PROTO_ID_LEN]; /* echoed */
	uint8_t token[PROTO_ID_LEN];	  /* MIGRATE: the secret channels present */
	char *software;
};

struct proto_cpuid_entry {
	uint32_t function, index, flags, eax, ebx, ecx, edx;
};

struct proto_disk {
	char *name;   /* a plain file name: see proto_valid_disk_name */
	char *format; /* "raw", "vhd", "vhdx" */
	uint64_t virtual_size, allocated;
	uint32_t block_size;
};

struct proto_preflight {
	char *vm_name;	   /* a plain name (proto_valid_disk_name rules) */
	char *config_json; /* the VM's configuration, JSON text (<= PROTO_CONFIG_MAX) */
	uint64_t mem_size; /* bytes of guest memory, a multiple of PROTO_PAGE_SIZE */
	uint32_t vcpus;
	char *cpu_vendor; /* "AuthenticAMD", "GenuineIntel" */
	uint32_t ncpuid;
	struct proto_cpuid_entry *cpuid;
	uint32_t ndisks;
	struct proto_disk *disks;
	uint64_t features; /* v2: wanted for this migration (v1: 0) */
	uint32_t channels; /* v2: extra connections wanted (v1: 0) */
	/* v3: the VM runtime (proto_valid_runtime_name; v1 and v2 decode as
	 * "memsync", and NULL encodes as "memsync") and what it needs the
	 * destination to match: JSON text of at most PROTO_CONFIG_MAX bytes, or ""
	 * (NULL encodes as ""). proto checks the name's form and that the text
	 * is JSON; the meaning is the runtime's. Encoding another runtime or a
	 * non-empty runtime_info for version 1 or 2 is refused (-EINVAL): an
	 * older destination would take the VM for a memsync one. */
	char *runtime;
	char *runtime_info;
};

#define PROTO_RUNTIME_MEMSYNC "memsync"		    /* smove's own KVM VMM (MEM_BATCH pages) */
#define PROTO_RUNTIME_QEMU    "qemu"		    /* QEMU (its migration stream in STREAM) */
#define PROTO_RUNTIME_DEFAULT PROTO_RUNTIME_MEMSYNC /* what v1 and v2 mean */

struct proto_preflight_reply {
	bool go;
	uint32_t nreasons; /* no-go: every reason; go: may hold warnings */
	char **reasons;
};

/* The destination's NBD export of one disk, and how to authenticate to it. */
struct proto_disk_export {
	uint32_t disk;	   /* index into PREFLIGHT's disks */
	char *host;	   /* host name or address, "" when socket is used */
	uint16_t port;	   /* 0 when socket is used */
	char *socket;	   /* a Unix socket path, "" when host/port is used */
	char *export_name; /* NBD export name */
	bool tls;	   /* TLS-PSK required (then identity and key are set) */
	char *psk_identity;
	uint32_t psk_len;
	uint8_t psk[PROTO_PSK_MAX];
};

#define PROTO_PAGE_ZERO 0x1u /* MEM_BATCH entry flag: the page is all zero */

/* One batch of pages (a view into the frame: see proto_mem_batch_apply). */
struct proto_mem_batch {
	uint32_t round;	  /* 1 = the first pass over memory */
	uint16_t channel; /* 0 = main connection (v1: always 0) */
	uint32_t npages;
	uint32_t ndata;		/* pages that carry data (not zero) */
	bool compressed;	/* data is a zlib stream inflating to ndata pages */
	const uint8_t *entries; /* npages entries of entry_len bytes (view) */
	uint32_t entry_len;	/* 8 (v2) or 16 (v1) */
	const uint8_t *data;	/* view */
	size_t data_len;
	bool applied; /* already written to the session's target (data is NULL) */
};

#define PROTO_ROUND_FINAL 0x1u /* ROUND_END flag: the vCPUs are paused, last round */

struct proto_round_end {
	uint32_t round;
	uint32_t flags;
	uint16_t nchannels;		      /* v2: entries in batches[] (main is 0) */
	uint32_t batches[PROTO_MAX_CHANNELS]; /* batches of this round sent on each */
	uint64_t pages, zero_pages, bytes;    /* this round's totals */
	uint64_t dirty_pages;		      /* still dirty when the round ended */
	uint64_t elapsed_us;		      /* since the round began */
};

/* VCPU_STATE (id = vCPU index, name unused) and DEVICE_STATE (name = device id):
 * an opaque blob with its own magic, version and CRC, made by memsync/. */
struct proto_blob {
	uint32_t id;
	char *name;
	const uint8_t *data; /* view on receive */
	uint32_t len;
};

struct proto_state_end {
	uint32_t vcpus, devices; /* how many VCPU_STATE and DEVICE_STATE were sent */
};

struct proto_running {
	uint32_t vcpus_running;
	uint64_t heartbeat; /* the guest's heartbeat counter, seen advancing */
};

/* CANCEL and ERROR */
struct proto_reason {
	uint32_t code; /* an errno value (EPROTO, ECANCELED, ...) */
	char *text;
};

enum proto_outcome {
	PROTO_OUTCOME_UNKNOWN = 0,     /* no record of that session */
	PROTO_OUTCOME_NOT_RESUMED = 1, /* never resumed: the source may resume */
	PROTO_OUTCOME_RESUMED = 2,     /* resumed: the destination owns the VM */
};

struct proto_resolve {
	uint8_t session_id[PROTO_ID_LEN];
};

struct proto_resolve_reply {
	uint8_t session_id[PROTO_ID_LEN];
	uint8_t outcome; /* enum proto_outcome */
	char *detail;
};

/* STREAM (v3, feature STREAM): a piece of a VM runtime's own migration
 * stream (QEMU's), source to destination, in order on the main connection.
 * offset is the number of stream bytes sent before this frame; the receiving
 * session checks it against its count (a gap or a repeat is -EPROTO). END
 * marks the last frame (which may be empty); no STREAM may follow it, and a
 * stream begun must have ended before VCPU_STATE, DEVICE_STATE or STATE_END. */
#define PROTO_STREAM_END 0x1u

struct proto_stream {
	uint64_t offset;
	uint32_t flags;	     /* PROTO_STREAM_END */
	const uint8_t *data; /* view */
	uint32_t len;	     /* at most PROTO_STREAM_MAX */
};

struct proto_msg {
	uint16_t type; /* enum proto_type */
	union {
		struct proto_hello hello;
		struct proto_hello_ack hello_ack;
		struct proto_preflight preflight;
		struct proto_preflight_reply preflight_reply;
		struct proto_disk_export disk_export;
		struct proto_mem_batch mem_batch;
		struct proto_round_end round_end;
		struct proto_blob blob; /* VCPU_STATE, DEVICE_STATE */
		struct proto_state_end state_end;
		struct proto_running running;
		struct proto_reason reason; /* CANCEL, ERROR */
		uint64_t nonce;		    /* PING, PONG */
		struct proto_resolve resolve;
		struct proto_resolve_reply resolve_reply;
		struct proto_stream stream;
	} u; /* SWITCHOVER_READY, RESUME, RESUMING, COMMIT, DONE carry nothing */
};

/* A growable byte buffer (encoding, scratch space for decompression). */
struct proto_buf {
	uint8_t *data;
	size_t len, cap;
};
void proto_buf_init(struct proto_buf *b);
void proto_buf_release(struct proto_buf *b);
/* Makes room for `need` bytes in total: -ENOMEM. */
int proto_buf_reserve(struct proto_buf *b, size_t need);

/* Encodes m's payload (not the frame header) for protocol `version` into out
 * (replacing its content). MEM_BATCH is encoded by proto_session_send_pages;
 * a session sends STREAM with proto_session_send_stream (encoding one here is
 * for tests and tools). */
int proto_msg_encode(const struct proto_msg *m, unsigned version, struct proto_buf *out, char *err);
/* Decodes a payload of `type` for `version`, checking every length and value
 * (unknown flags, strings with NUL bytes, names with '/', counts past limits).
 * On failure nothing needs releasing. */
int proto_msg_decode(unsigned type, unsigned flags, const uint8_t *p, size_t len, unsigned version,
		     struct proto_msg *m, char *err);
void proto_msg_release(struct proto_msg *m);

/* A disk or VM name the destination may use as a file name: 1..255 bytes of
 * printable ASCII, not "." or "..", no '/', no '\\', not starting with '-' or '.'. */
bool proto_valid_disk_name(const char *name);
/* A runtime name: 1..PROTO_RUNTIME_MAX bytes of [a-z0-9-]. */
bool proto_valid_runtime_name(const char *name);

/* ---- Frames --------------------------------------------------------------------
 * A frame is a 20-byte header then `len` bytes of payload:
 *   be32 magic "SMOV" | be16 type | be16 flags | be32 len | be32 crc | be32 hcrc
 * crc is the CRC-32C of the payload; hcrc is the CRC-32C of the first 16
 * header bytes, so that a corrupted length is refused before any allocation. */

struct proto_frame_hdr {
	uint16_t type, flags;
	uint32_t len, crc;
};

void proto_frame_hdr_encode(const struct proto_frame_hdr *h, uint8_t out[PROTO_FRAME_HDR_LEN]);
/* Checks magic, header CRC, type, flags and length against PROTO_FRAME_MAX. */
int proto_frame_hdr_parse(const uint8_t in[PROTO_FRAME_HDR_LEN], struct proto_frame_hdr *h,
			  char *err);
/* Checks the payload's CRC against the header's. */
int proto_frame_check(const struct proto_frame_hdr *h, const uint8_t *payload, char *err);
/* CRC-32C of a payload held in pieces. */
uint32_t proto_crc32c_iov(const struct iovec *iov, int n);

/* ---- Transport: connections, addresses, TLS ----------------------------------
 * A connection owns a connected stream socket (TCP or Unix), optionally with
 * TLS. Every send and receive of a frame must complete within the connection's
 * timeout (PROTO_TIMEOUT_MS unless set), measured with poll(2) from the start
 * of the frame; a timeout returns -ETIMEDOUT and the connection is then dead. */

struct proto_conn;
struct proto_tls;

/* Addresses: "HOST:PORT", "[v6]:PORT", or a Unix socket "unix:PATH" or "/PATH".
 * proto_listen binds and listens (PORT may be 0: see proto_local_port). */
int proto_listen(const char *addr, int *fd, char *err);
int proto_local_port(int fd);
/* Waits up to timeout_ms (-1: forever) for a peer; -ETIMEDOUT. */
int proto_accept(int listen_fd, int timeout_ms, int *fd, char *err);
int proto_connect(const char *addr, int timeout_ms, int *fd, char *err);
/* True for 127.0.0.0/8, ::1, "localhost" and Unix sockets. */
bool proto_addr_is_loopback(const char *addr);

/* TLS credentials, shared by any number of connections of one side.
 * PSK: `file` holds nbdkit --tls-psk lines "username:hexkey"; the server
 * accepts any listed user, the client presents `username` (NULL: the first).
 * X.509: `dir` holds ca-cert.pem and server-cert.pem/server-key.pem (server)
 * or client-cert.pem/client-key.pem (client); both sides verify the peer's
 * certificate against ca-cert.pem, and a client given `hostname` also checks
 * that the server's certificate names it. */
int proto_tls_new_psk(const char *file, const char *username, enum proto_side side,
		      struct proto_tls **out, char *err);
int proto_tls_new_x509(const char *dir, const char *hostname, enum proto_side side,
		       struct proto_tls **out, char *err);
void proto_tls_free(struct proto_tls *t);

/* Takes ownership of fd (closed by proto_conn_close, and on failure). With
 * tls, performs the handshake (the source is the TLS client); a peer that
 * does not authenticate is refused with a message saying why. */
int proto_conn_open(int fd, struct proto_tls *tls, enum proto_side side, int timeout_ms,
		    struct proto_conn **out, char *err);
void proto_conn_close(struct proto_conn *c);
void proto_conn_set_timeout(struct proto_conn *c, int timeout_ms);
/* The authenticated peer: PSK username or certificate DN; NULL without TLS. */
const char *proto_conn_peer_identity(const struct proto_conn *c);
void proto_conn_stats(const struct proto_conn *c, uint64_t *sent, uint64_t *received);
/* Sends one frame whose payload is the concatenation of iov[0..n). */
int proto_conn_send(struct proto_conn *c, unsigned type, unsigned flags, const struct iovec *iov,
		    int n, char *err);
/* 1 when data (a frame, an end of stream or an error) is waiting to be
 * received, 0 when none came within timeout_ms (0: just look): lets a sender
 * notice a CANCEL or ERROR from its peer between batches. */
int proto_conn_poll(struct proto_conn *c, int timeout_ms, char *err);
/* Receives one frame into buf (payload only), checked with proto_frame_hdr_parse
 * and proto_frame_check. A clean end of stream before a header: -ECONNRESET
 * with "connection closed by peer". */
int proto_conn_recv(struct proto_conn *c, struct proto_frame_hdr *h, struct proto_buf *buf,
		    char *err);

/* Writes an nbdkit --tls-psk file holding "identity:hexkey" (mode 0600).
 * proto_psk_generate fills identity (a printable name of < 40 bytes) and
 * key_len random bytes, fresh for each migration. */
int proto_psk_generate(char identity[40], uint8_t *key, size_t key_len, char *err);
int proto_psk_write_file(const char *path, const char *identity, const uint8_t *key, size_t key_len,
			 char *err);
/* Fills buf with random bytes (getrandom(2)). */
int proto_random(void *buf, size_t len, char *err);

/* ---- Sessions: the state machine ----------------------------------------------- */

enum proto_state {
	PROTO_ST_START,
	PROTO_ST_HELLO,
	PROTO_ST_NEGOTIATED,
	PROTO_ST_PREFLIGHT,
	PROTO_ST_STORAGE,
	PROTO_ST_MEMORY,
	PROTO_ST_STATE,
	PROTO_ST_LOADING,
	PROTO_ST_READY,
	PROTO_ST_IN_DOUBT,
	PROTO_ST_RESUMING,
	PROTO_ST_RUNNING,
	PROTO_ST_COMMITTED,
	PROTO_ST_CHANNEL,
	PROTO_ST_RESOLVE,
	PROTO_ST_RESOLVING,
	PROTO_ST_CLOSED, /* ended in order (DONE, CANCEL, no-go, RESOLVE_REPLY) */
	PROTO_ST_DEAD,	 /* ended by an error; why[] says which */
};

const char *proto_state_name(enum proto_state st);
/* The state after `from` sends `type` in state st of a session of `role`
 * (go: PREFLIGHT_REPLY's verdict), or -1 when that message is out of order
 * there. A pure function of the graph drawn at the top of this section. */
int proto_state_next(enum proto_state st, enum proto_role role, enum proto_side from, unsigned type,
		     bool go);

struct proto_mem_target;

struct proto_session {
	struct proto_conn *conn; /* not owned */
	enum proto_side side;
	enum proto_state state;
	enum proto_role role;
	uint16_t min_version, max_version; /* spoken by this side (tests narrow them) */
	uint16_t version;		   /* negotiated */
	uint64_t features;		   /* negotiated */
	uint16_t channel;		   /* CHANNEL sessions: their index */
	uint8_t session_id[PROTO_ID_LEN];
	uint8_t token[PROTO_ID_LEN];
	struct proto_hello peer; /* destination: the peer's HELLO */
	struct proto_buf rx, tx;
	uint32_t tx_round, tx_batches;	       /* MEM_BATCH sent in round tx_round */
	const struct proto_mem_target *target; /* destination: proto_session_set_target */
	struct proto_buf scratch;	       /* decompressed pages */
	uint32_t reached;		       /* bit st: the session was in state st */
	bool peer_cancelled;		       /* the peer sent CANCEL */
	char why[PROTO_ERR_LEN];	       /* CLOSED/DEAD: the reason */
	/* STREAM (v3): bytes sent and received so far, i.e. the next frame's
	 * offset; whether the END was sent or received; the frame size of
	 * proto_session_send_stream (0: PROTO_STREAM_CHUNK). */
	uint64_t stream_tx, stream_rx;
	bool stream_tx_end, stream_rx_end;
	uint32_t stream_frame;
};

void proto_session_init(struct proto_session *s, struct proto_conn *conn, enum proto_side side);
void proto_session_release(struct proto_session *s);

/* Source: sends HELLO and checks HELLO_ACK. session_id and token may be NULL
 * (MIGRATE: a fresh random id; RESOLVE: pass the id in question). For a
 * CHANNEL, pass the main session's id and token and the channel index. */
int proto_session_hello(struct proto_session *s, enum proto_role role, uint64_t features,
			const uint8_t *session_id, const uint8_t *token, uint16_t channel,
			char *err);
/* Destination: receives HELLO and chooses the version (refusing, with ERROR
 * sent, a peer with no common version). The peer's HELLO is in s->peer; the
 * caller checks a CHANNEL with proto_session_join_check, then answers with
 * proto_session_ack (granting `features` & wanted) or proto_session_fail. */
int proto_session_accept(struct proto_session *s, char *err);
int proto_session_join_check(const struct proto_session *main, const struct proto_session *chan,
			     unsigned channels, char *err);
int proto_session_ack(struct proto_session *s, uint64_t features, char *err);

/* Sends m, checking that m is in order for the current state. */
int proto_session_send(struct proto_session *s, const struct proto_msg *m, char *err);
/* Receives the next message (PING is answered and PONG skipped here). An
 * out-of-order or malformed frame sends ERROR to the peer, moves to DEAD and
 * returns -EPROTO; a peer's ERROR returns -ECONNABORTED with its reason; a
 * CANCEL is returned as a message (state CLOSED). Release m after use. */
int proto_session_recv(struct proto_session *s, struct proto_msg *m, char *err);
/* Receives a message only if one is already waiting: 1 with m filled (as
 * proto_session_recv), 0 when nothing but PING/PONG was waiting, or a
 * negative errno. Lets a sender that pings notice its peer's CANCEL or ERROR
 * between batches without blocking on a PONG. Release m after a 1. */
int proto_session_poll(struct proto_session *s, struct proto_msg *m, char *err);
/* The source's verdict at any moment, above all after a failure: RESUMED once
 * RUNNING arrived (the destination owns the VM); UNKNOWN when RESUME was sent
 * but neither RUNNING nor the destination's CANCEL arrived (in doubt: keep
 * the VM paused and its files, and ask later with a RESOLVE session);
 * NOT_RESUMED otherwise (roll back: resume the VM here). */
enum proto_outcome proto_session_outcome(const struct proto_session *s);
/* Ends the session because of a fault the caller found (a gpa outside memory,
 * a bad blob): sends ERROR with the reason (best effort) and moves to DEAD.
 * Returns -code, with the reason in err (the arguments may point into err). */
int proto_session_fail(struct proto_session *s, int code, char *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- Streams (v3, feature STREAM) ----------------------------------------------
 * A VM runtime that migrates memory and devices as its own byte stream (QEMU,
 * which never listens on the network) has the source send that stream as
 * STREAM frames on the main connection during the memory phase (from STORAGE
 * or MEMORY, which it keeps; before VCPU_STATE, DEVICE_STATE and STATE_END),
 * and the destination receive them with proto_session_recv. Both sessions
 * count the bytes: each frame's offset is the number sent before it.
 *
 * proto_session_send_stream sends len bytes of buf as the next bytes of the
 * stream, in frames of at most s->stream_frame bytes (0: PROTO_STREAM_CHUNK;
 * at most PROTO_STREAM_MAX), each written by one gathered write of the frame
 * header, the STREAM header and slices of buf: the bytes are not copied (but
 * by TLS into its records), and must not change during the call, since each
 * frame's CRC is computed before it is written. With end, the last frame
 * carries PROTO_STREAM_END (one empty frame when len is 0); without, len 0
 * sends nothing. Advances s->stream_tx by the bytes of each frame sent.
 * Without the feature negotiated, after END, or outside the memory phase:
 * -EPROTO and nothing is sent; a failed write ends the session (DEAD).
 *
 * The destination's proto_session_recv returns each STREAM (data is a view,
 * valid until the next receive) after checking that the feature was
 * negotiated, that its offset equals s->stream_rx (a gap or a repeat is
 * -EPROTO), that it does not follow the END and is not empty without END;
 * then advances s->stream_rx and sets s->stream_rx_end on END. A stream
 * begun must end before the VM's state: VCPU_STATE, DEVICE_STATE or STATE_END
 * while it is open is -EPROTO on either side. */
int proto_session_send_stream(struct proto_session *s, const void *buf, size_t len, bool end,
			      char *err);
/* The same for bytes held in pieces (the two halves of a ring buffer). */
int proto_session_send_streamv(struct proto_session *s, const struct iovec *iov, int n, bool end,
			       char *err);

/* ---- Pages -------------------------------------------------------------------- */

struct proto_page {
	uint64_t gpa;	  /* guest-physical address, page aligned */
	const void *data; /* PROTO_PAGE_SIZE bytes */
};

struct proto_pages_opts {
	bool compress;	     /* try zlib (needs PROTO_FEAT_COMPRESS) */
	int level;	     /* zlib level, 0 = 1 */
	unsigned min_saving; /* percent a batch must shrink to be sent compressed (0 = 10) */
};

struct proto_pages_stats {
	uint64_t batches, pages, zero_pages, data_pages;
	uint64_t compressed_batches, skipped_compression;
	uint64_t payload_bytes; /* MEM_BATCH payload bytes sent */
};

/* The sender's per-thread encoder: zlib stream, scratch buffers, stats. */
struct proto_pages_enc;
int proto_pages_enc_new(const struct proto_pages_opts *o, struct proto_pages_enc **out, char *err);
void proto_pages_enc_free(struct proto_pages_enc *e);
const struct proto_pages_stats *proto_pages_enc_stats(const struct proto_pages_enc *e);

/* True when the 4 KiB page is all zero bytes. */
bool proto_page_is_zero(const void *page);

/* Sends pages[0..n) (n <= PROTO_BATCH_MAX) of `round` as one MEM_BATCH: zero
 * pages as a flag, the others' bytes gathered by writev (uncompressed) or
 * compressed when enabled, negotiated and worthwhile. Counts the batch in
 * s->tx_batches for ROUND_END. */
int proto_session_send_pages(struct proto_session *s, struct proto_pages_enc *e, uint32_t round,
			     const struct proto_page *pages, size_t n, char *err);

/* Called once per page of a batch, in order; data is NULL for a zero page. */
typedef int (*proto_page_fn)(void *opaque, uint64_t gpa, const void *data, char *err);

/* Validates a received batch (every gpa aligned and below mem_size, data length, decompressed size
 * exactly ndata pages: inflating past it is refused) before calling fn for any page. scratch holds
 * decompressed data (reuse it across batches). */
int proto_mem_batch_apply(const struct proto_mem_batch *b, uint64_t mem_size,
			  struct proto_buf *scratch, proto_page_fn fn, void *opaque, char *err);
/* The same into one flat mapping of mem_size bytes (zero pages are cleared). */
int proto_mem_batch_copy(const struct proto_mem_batch *b, void *mem, uint64_t mem_size,
			 struct proto_buf *scratch, char *err);

/* ---- Receiving pages straight into guest memory (destination) -------------------
 * With a target set, proto_session_recv applies every MEM_BATCH itself and
 * returns it with `applied` set: an uncompressed batch is read from the
 * socket straight into the guest pages (one copy fewer), a compressed one is
 * inflated into them; the batch header and every gpa are checked before any
 * page is written, and the frame's CRC after (a batch that fails it has
 * already been written: the migration then fails and the destination
 * discards its copy, as after any error). With `rounds`, the session calls
 * proto_rounds_batch_begin/_end around the writes (channel = s->channel),
 * and aborts the rounds with the reason when a receive fails (but not when a
 * CHANNEL session's stream ends cleanly between frames: -ECONNRESET, the
 * normal end of a channel; a missing batch then shows in proto_rounds_end). */
struct proto_mem_target {
	uint64_t mem_size;
	uint8_t *base; /* one mapping of mem_size bytes, or NULL to use page() */
	/* The host address of the 4 KiB guest page at gpa (< mem_size), or NULL
	 * when it is not mapped (the batch is then refused). */
	void *(*page)(void *opaque, uint64_t gpa);
	void *opaque;
	struct proto_rounds *rounds; /* NULL: a single connection, in order */
	int timeout_ms;		     /* for proto_rounds_batch_begin (0: PROTO_TIMEOUT_MS) */
};
/* t must stay valid while the session receives (NULL: off). */
void proto_session_set_target(struct proto_session *s, const struct proto_mem_target *t);

/* ---- Rounds across channels (receiver) -------------------------------------------
 * Ordering rule: a page may be sent again in a later round on another channel,
 * so round k+1's batches must be applied only after all of round k's. The
 * sender sends ROUND_END k (on the main connection, with each channel's batch
 * count) only after every channel has sent its round-k batches, and starts
 * round k+1 only after that. The receiver's threads call batch_begin before
 * applying a batch (it waits while the batch's round is ahead of the current
 * one) and batch_end after; the main thread calls round_end with the received
 * ROUND_END, which waits until every channel's count is reached. */
struct proto_rounds;
int proto_rounds_new(unsigned nchannels, struct proto_rounds **out, char *err);
void proto_rounds_free(struct proto_rounds *r);
int proto_rounds_batch_begin(struct proto_rounds *r, unsigned channel, uint32_t round,
			     int timeout_ms, char *err);
void proto_rounds_batch_end(struct proto_rounds *r, unsigned channel);
int proto_rounds_end(struct proto_rounds *r, const struct proto_round_end *re, int timeout_ms,
		     char *err);
/* Wakes every waiter with an error (a channel died); later calls fail too. */
void proto_rounds_abort(struct proto_rounds *r, const char *reason);

#endif
