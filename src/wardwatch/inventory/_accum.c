/*
 * wardwatch.inventory._accum: the per-packet accumulators of the fast path, in C.
 *
 * After the header decoder has turned a batch into columns, two things must look at every packet: the flow
 * table (which flow does it belong to, does it start a new one) and the inventory's sighting tables (MACs,
 * MAC+VLAN, IPs, MAC->IP source pairs, MAC<-IP destination pairs). Both are hash-table updates in packet
 * order; numpy can only do them with sorts and group-bys (see vflows.py and grouping.py, which stay as the
 * fallback and give identical results: the tests run both). This module only does integer arithmetic on
 * columns that were already decoded and bounds-checked (StreamTable, below, also copies payload slices).
 *
 * FlowAcc follows FlowTable's rules exactly (flows.py): canonical key (protocol, smaller endpoint, larger
 * endpoint), initiator from SYN / SYN-ACK / first packet, a new flow on a pure SYN after FIN/RST or with a new
 * initial sequence number once the old one was answered, or after an idle gap longer than the timeout.
 *
 * Sightings follows InventoryBuilder.add_packet: per key, count, first time (with the capture and number of
 * the first packet at that time), last time, and for source pairs the number of packets with an initial TTL.
 *
 * StreamHeads follows streams.StreamHeads: which TCP packets are among the first payload packets of each
 * direction of their connection (the ones dissectors of content-recognised protocols want).
 *
 * StreamTable follows engine._Streams (with dissect.reassembly.Reassembler): the TCP connections the stream
 * dissectors claimed, their first payload packets within the caps, handed back when they end. It is the one
 * part that copies packet bytes (payload slices, bounds-checked against the buffer they come from).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SYN 0x02
#define ACK 0x10
#define FIN 0x01
#define RST 0x04
#define MISSING_VLAN UINT64_MAX
#define MAX_KEY 5

/* ------------------------------------------------------------------------------------------------------- */
/* An open-addressing hash table of fixed-width uint64 keys with fixed-width int64 values.                   */

typedef struct {
    int nkey, nval;
    Py_ssize_t n, cap;  /* entries used / allocated */
    uint64_t *keys;     /* cap * nkey */
    int64_t *vals;      /* cap * nval */
    uint64_t *hashes;   /* cap */
    int32_t *slots;     /* nslots, -1 = empty */
    size_t mask;        /* nslots - 1 */
} Table;

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBULL;
    return h ^ (h >> 31);
}

static inline uint64_t hash_key(const uint64_t *k, int nkey) {
    uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < nkey; i++)
        h = mix64(h ^ (k[i] + 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1)));
    return h;
}

static int table_init(Table *t, int nkey, int nval) {
    memset(t, 0, sizeof(*t));
    t->nkey = nkey;
    t->nval = nval;
    t->cap = 1024;
    t->keys = PyMem_Malloc(sizeof(uint64_t) * nkey * t->cap);
    t->vals = PyMem_Malloc(sizeof(int64_t) * (nval ? nval : 1) * t->cap);
    t->hashes = PyMem_Malloc(sizeof(uint64_t) * t->cap);
    t->slots = PyMem_Malloc(sizeof(int32_t) * 4096);
    if (!t->keys || !t->vals || !t->hashes || !t->slots) {
        PyErr_NoMemory();
        return -1;
    }
    memset(t->slots, 0xFF, sizeof(int32_t) * 4096);
    t->mask = 4095;
    return 0;
}

static void table_free(Table *t) {
    PyMem_Free(t->keys);
    PyMem_Free(t->vals);
    PyMem_Free(t->hashes);
    PyMem_Free(t->slots);
    memset(t, 0, sizeof(*t));
}

static void table_clear(Table *t) {
    t->n = 0;
    memset(t->slots, 0xFF, sizeof(int32_t) * (t->mask + 1));
}

static int table_rehash(Table *t, size_t nslots) {
    int32_t *slots = PyMem_Malloc(sizeof(int32_t) * nslots);
    if (!slots) {
        PyErr_NoMemory();
        return -1;
    }
    memset(slots, 0xFF, sizeof(int32_t) * nslots);
    size_t mask = nslots - 1;
    for (Py_ssize_t e = 0; e < t->n; e++) {
        size_t i = t->hashes[e] & mask;
        while (slots[i] >= 0)
            i = (i + 1) & mask;
        slots[i] = (int32_t)e;
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

/* Index of the entry with key k; inserted (values zeroed) when absent, *created set. -1 on memory error. */
static Py_ssize_t table_find(Table *t, const uint64_t *k, int *created) {
    uint64_t h = hash_key(k, t->nkey);
    size_t i = h & t->mask;
    int nkey = t->nkey;
    for (;;) {
        int32_t e = t->slots[i];
        if (e < 0)
            break;
        if (t->hashes[e] == h && memcmp(t->keys + (size_t)e * nkey, k, sizeof(uint64_t) * nkey) == 0) {
            *created = 0;
            return e;
        }
        i = (i + 1) & t->mask;
    }
    if (t->n >= INT32_MAX - 1) {
        PyErr_SetString(PyExc_OverflowError, "accumulator table full");
        return -1;
    }
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap * 2;
        uint64_t *keys = PyMem_Realloc(t->keys, sizeof(uint64_t) * nkey * cap);
        if (!keys)
            goto nomem;
        t->keys = keys;
        int64_t *vals = PyMem_Realloc(t->vals, sizeof(int64_t) * (t->nval ? t->nval : 1) * cap);
        if (!vals)
            goto nomem;
        t->vals = vals;
        uint64_t *hashes = PyMem_Realloc(t->hashes, sizeof(uint64_t) * cap);
        if (!hashes)
            goto nomem;
        t->hashes = hashes;
        t->cap = cap;
    }
    Py_ssize_t e = t->n++;
    memcpy(t->keys + (size_t)e * nkey, k, sizeof(uint64_t) * nkey);
    if (t->nval)
        memset(t->vals + (size_t)e * t->nval, 0, sizeof(int64_t) * t->nval);
    t->hashes[e] = h;
    t->slots[i] = (int32_t)e;
    *created = 1;
    if ((size_t)t->n * 2 > t->mask + 1) {
        if (table_rehash(t, (t->mask + 1) * 2) < 0)
            return -1;
    }
    return e;
nomem:
    PyErr_NoMemory();
    return -1;
}

/* Append an entry without indexing it (the table used as a list). */
static int table_append(Table *t, const uint64_t *k, const int64_t *v) {
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap * 2;
        uint64_t *keys = PyMem_Realloc(t->keys, sizeof(uint64_t) * t->nkey * cap);
        if (!keys)
            goto nomem;
        t->keys = keys;
        int64_t *vals = PyMem_Realloc(t->vals, sizeof(int64_t) * (t->nval ? t->nval : 1) * cap);
        if (!vals)
            goto nomem;
        t->vals = vals;
        uint64_t *hashes = PyMem_Realloc(t->hashes, sizeof(uint64_t) * cap);
        if (!hashes)
            goto nomem;
        t->hashes = hashes;
        t->cap = cap;
    }
    memcpy(t->keys + (size_t)t->n * t->nkey, k, sizeof(uint64_t) * t->nkey);
    memcpy(t->vals + (size_t)t->n * t->nval, v, sizeof(int64_t) * t->nval);
    t->hashes[t->n] = 0;
    t->n++;
    return 0;
nomem:
    PyErr_NoMemory();
    return -1;
}

/* (keys, values) of every entry, in insertion order, as bytes of native uint64 / int64. */
static PyObject *table_export(Table *t) {
    PyObject *k = PyBytes_FromStringAndSize((const char *)t->keys, sizeof(uint64_t) * t->nkey * t->n);
    PyObject *v = PyBytes_FromStringAndSize((const char *)t->vals, sizeof(int64_t) * t->nval * t->n);
    if (!k || !v) {
        Py_XDECREF(k);
        Py_XDECREF(v);
        return NULL;
    }
    return Py_BuildValue("nNN", t->n, k, v);
}

/* ------------------------------------------------------------------------------------------------------- */
/* Column arguments.                                                                                          */

typedef struct {
    Py_buffer view;
    int held;
} Col;

/* Get a C-contiguous buffer of at least n items of itemsize bytes. */
static int col_get(PyObject *obj, Col *c, Py_ssize_t itemsize, Py_ssize_t n, const char *name) {
    if (PyObject_GetBuffer(obj, &c->view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    c->held = 1;
    if (c->view.itemsize != itemsize || c->view.len < n * itemsize) {
        PyErr_Format(PyExc_ValueError, "column %s: need %zd items of %zd bytes", name, n, itemsize);
        return -1;
    }
    return 0;
}

static void cols_release(Col *cols, int n) {
    for (int i = 0; i < n; i++)
        if (cols[i].held) {
            PyBuffer_Release(&cols[i].view);
            cols[i].held = 0;
        }
}

/* ------------------------------------------------------------------------------------------------------- */
/* FlowAcc                                                                                                    */

enum {
    S_INST, S_INIT_A, S_FIRST, S_LAST, S_PK_A, S_PK_B, S_BY_A, S_BY_B, S_FL_A, S_FL_B, S_HOW, S_CLOSED,
    S_SYN_SEQ, S_TS0, S_SYN_ANY, S_EXPORTED, /* fields after this one are internal */
    S_LAST_VLAN = S_EXPORTED, S_NFIELDS
};
#define FLOW_KEY 5 /* small (ver, proto, ports), a_hi, a_lo, b_hi, b_lo */

typedef struct {
    PyObject_HEAD
    Table live;    /* key -> state */
    Table done;    /* finished flows: key + state, in the order they finished (appended, not indexed) */
    Table vlans;   /* (inst << 12 | vlan) set */
    int64_t tcp_limit, other_limit, next_inst;
} FlowAcc;

static void flowacc_dealloc(FlowAcc *self) {
    table_free(&self->live);
    table_free(&self->done);
    table_free(&self->vlans);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int flowacc_init(FlowAcc *self, PyObject *args, PyObject *kw) {
    long long tcp, other;
    if (!PyArg_ParseTuple(args, "LL", &tcp, &other))
        return -1;
    table_free(&self->live);
    table_free(&self->done);
    table_free(&self->vlans);
    if (table_init(&self->live, FLOW_KEY, S_NFIELDS) < 0 || table_init(&self->done, FLOW_KEY, S_NFIELDS) < 0 ||
        table_init(&self->vlans, 1, 0) < 0)
        return -1;
    self->tcp_limit = tcp;
    self->other_limit = other;
    self->next_inst = 0;
    return 0;
}

static inline void flow_start(FlowAcc *self, int64_t *s, const uint64_t *key, int from_a, int64_t ts, int tcp, int fl,
                              int64_t seq) {
    memset(s, 0, sizeof(int64_t) * S_NFIELDS);
    s[S_INST] = self->next_inst++;
    s[S_INIT_A] = from_a;
    s[S_FIRST] = s[S_LAST] = s[S_TS0] = ts;
    s[S_SYN_SEQ] = -1;
    s[S_LAST_VLAN] = -1;
    if (tcp && (fl & SYN)) {
        if (fl & ACK) {
            /* the other side is the initiator, unless both sides are one endpoint (nothing to swap) */
            int same = key[1] == key[3] && key[2] == key[4] && ((key[0] >> 20) & 0xFFFFF) == (key[0] & 0xFFFFF);
            s[S_INIT_A] = same ? from_a : !from_a;
            s[S_HOW] = 2;
        } else {
            s[S_HOW] = 1;
            s[S_SYN_SEQ] = seq;
        }
    }
}

/*
 * add(rows, ipver u8, proto i32, sport i32, dport i32, frag u8, src_hi, src_lo, dst_hi, dst_lo u64, ts i64,
 *     wirelen i64, tflags u8, tseq i64, vlan i32): account the packets of rows (int64 indices, in order) that
 *     belong to a flow (IP, not a later fragment, with ports for TCP/UDP/SCTP).
 */
static PyObject *flowacc_add(FlowAcc *self, PyObject *args) {
    PyObject *o[15];
    if (!PyArg_UnpackTuple(args, "add", 15, 15, &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                           &o[9], &o[10], &o[11], &o[12], &o[13], &o[14]))
        return NULL;
    Col c[15];
    memset(c, 0, sizeof(c));
    static const char *names[15] = {"rows", "ipver", "proto", "sport", "dport", "frag", "src_hi", "src_lo",
                                    "dst_hi", "dst_lo", "ts", "wirelen", "tflags", "tseq", "vlan"};
    static const Py_ssize_t sizes[15] = {8, 1, 4, 4, 4, 1, 8, 8, 8, 8, 8, 8, 1, 8, 4};
    if (col_get(o[0], &c[0], 8, 0, names[0]) < 0) {
        cols_release(c, 15);
        return NULL;
    }
    Py_ssize_t nrows = c[0].view.len / 8;
    const int64_t *rows = c[0].view.buf;
    Py_ssize_t n = -1;
    for (int i = 1; i < 15; i++) {
        if (col_get(o[i], &c[i], sizes[i], 0, names[i]) < 0) {
            cols_release(c, 15);
            return NULL;
        }
        Py_ssize_t len = c[i].view.len / sizes[i];
        if (n < 0 || len < n)
            n = len;
    }
    for (Py_ssize_t r = 0; r < nrows; r++)
        if (rows[r] < 0 || rows[r] >= n) {
            cols_release(c, 15);
            PyErr_SetString(PyExc_IndexError, "row out of range");
            return NULL;
        }
    const uint8_t *ipver = c[1].view.buf, *frag = c[5].view.buf, *tflags = c[12].view.buf;
    const int32_t *proto = c[2].view.buf, *sport = c[3].view.buf, *dport = c[4].view.buf, *vlan = c[14].view.buf;
    const uint64_t *s_hi = c[6].view.buf, *s_lo = c[7].view.buf, *d_hi = c[8].view.buf, *d_lo = c[9].view.buf;
    const int64_t *ts = c[10].view.buf, *wirelen = c[11].view.buf, *tseq = c[13].view.buf;
    int failed = 0;
    for (Py_ssize_t r = 0; r < nrows && !failed; r++) {
        Py_ssize_t i = rows[r];
        int p = proto[i];
        if (ipver[i] == 0 || p < 0 || frag[i] == 2)
            continue;
        int port_proto = p == 6 || p == 17 || p == 132;
        if (port_proto && (sport[i] < 0 || dport[i] < 0))
            continue;
        uint64_t sp = port_proto ? (uint64_t)sport[i] + 1 : 0, dp = port_proto ? (uint64_t)dport[i] + 1 : 0;
        int from_a = s_hi[i] < d_hi[i] ||
                     (s_hi[i] == d_hi[i] && (s_lo[i] < d_lo[i] || (s_lo[i] == d_lo[i] && sp <= dp)));
        uint64_t key[FLOW_KEY];
        uint64_t a_port = from_a ? sp : dp, b_port = from_a ? dp : sp;
        key[0] = ((uint64_t)ipver[i] << 56) | ((uint64_t)p << 40) | (a_port << 20) | b_port;
        key[1] = from_a ? s_hi[i] : d_hi[i];
        key[2] = from_a ? s_lo[i] : d_lo[i];
        key[3] = from_a ? d_hi[i] : s_hi[i];
        key[4] = from_a ? d_lo[i] : s_lo[i];
        int created;
        Py_ssize_t e = table_find(&self->live, key, &created);
        if (e < 0) {
            failed = 1;
            break;
        }
        int64_t *s = self->live.vals + (size_t)e * S_NFIELDS;
        int tcp = p == 6, fl = tflags[i];
        int64_t t = ts[i];
        if (!created) {
            int fresh = 0;
            if (tcp && (fl & SYN) && !(fl & ACK) &&
                (s[S_CLOSED] ||
                 (s[S_SYN_SEQ] >= 0 && tseq[i] != s[S_SYN_SEQ] && ((s[S_INIT_A] ? s[S_FL_B] : s[S_FL_A]) & ACK))))
                fresh = 1;
            int64_t limit = tcp ? self->tcp_limit : self->other_limit;
            if (!fresh && limit >= 0 && t - s[S_LAST] > limit)
                fresh = 1;
            if (fresh) {
                if (table_append(&self->done, key, s) < 0) {
                    failed = 1;
                    break;
                }
                created = 1;
            }
        }
        if (created)
            flow_start(self, s, key, from_a, t, tcp, fl, tseq[i]);
        if (t < s[S_FIRST])
            s[S_FIRST] = t;
        if (t > s[S_LAST])
            s[S_LAST] = t;
        if (from_a) {
            s[S_PK_A]++;
            s[S_BY_A] += wirelen[i];
            s[S_FL_A] |= fl;
        } else {
            s[S_PK_B]++;
            s[S_BY_B] += wirelen[i];
            s[S_FL_B] |= fl;
        }
        if (fl & (FIN | RST))
            s[S_CLOSED] = 1;
        if (tcp && (fl & SYN) && !(fl & ACK))
            s[S_SYN_ANY] = 1;
        int v = vlan[i];
        if (v >= 0 && v != s[S_LAST_VLAN]) {
            uint64_t code = ((uint64_t)s[S_INST] << 12) | (uint64_t)v;
            int made;
            if (table_find(&self->vlans, &code, &made) < 0) {
                failed = 1;
                break;
            }
            s[S_LAST_VLAN] = v;
        }
    }
    cols_release(c, 15);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

/* export() -> (n_done, keys, states, vlan_codes): done flows (in the order they finished) then live ones;
 * keys are FLOW_KEY uint64 per flow, states S_EXPORTED int64 per flow, vlan codes inst << 12 | vlan. */
static PyObject *flowacc_export(FlowAcc *self, PyObject *unused) {
    Py_ssize_t nd = self->done.n, nl = self->live.n, n = nd + nl;
    PyObject *keys = PyBytes_FromStringAndSize(NULL, sizeof(uint64_t) * FLOW_KEY * n);
    PyObject *states = PyBytes_FromStringAndSize(NULL, sizeof(int64_t) * S_EXPORTED * n);
    PyObject *codes = PyBytes_FromStringAndSize((const char *)self->vlans.keys, sizeof(uint64_t) * self->vlans.n);
    if (!keys || !states || !codes) {
        Py_XDECREF(keys);
        Py_XDECREF(states);
        Py_XDECREF(codes);
        return NULL;
    }
    uint64_t *k = (uint64_t *)PyBytes_AS_STRING(keys);
    int64_t *s = (int64_t *)PyBytes_AS_STRING(states);
    memcpy(k, self->done.keys, sizeof(uint64_t) * FLOW_KEY * nd);
    memcpy(k + FLOW_KEY * nd, self->live.keys, sizeof(uint64_t) * FLOW_KEY * nl);
    for (Py_ssize_t i = 0; i < nd; i++)
        memcpy(s + S_EXPORTED * i, self->done.vals + (size_t)S_NFIELDS * i, sizeof(int64_t) * S_EXPORTED);
    for (Py_ssize_t i = 0; i < nl; i++)
        memcpy(s + S_EXPORTED * (nd + i), self->live.vals + (size_t)S_NFIELDS * i, sizeof(int64_t) * S_EXPORTED);
    return Py_BuildValue("nNNN", nd, keys, states, codes);
}

static Py_ssize_t flowacc_len(FlowAcc *self) { return self->done.n + self->live.n; }

static PyMethodDef flowacc_methods[] = {
    {"add", (PyCFunction)flowacc_add, METH_VARARGS, "Account the packets of a decoded batch."},
    {"export", (PyCFunction)flowacc_export, METH_NOARGS, "Every flow as columns."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods flowacc_seq = {.sq_length = (lenfunc)flowacc_len};

static PyTypeObject FlowAccType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wardwatch.inventory._accum.FlowAcc",
    .tp_basicsize = sizeof(FlowAcc),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FlowAcc(tcp_timeout_ns, other_timeout_ns): the flow table of one capture (-1: no timeout).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)flowacc_init,
    .tp_dealloc = (destructor)flowacc_dealloc,
    .tp_methods = flowacc_methods,
    .tp_as_sequence = &flowacc_seq,
};

/* ------------------------------------------------------------------------------------------------------- */
/* Sightings                                                                                                  */

enum { V_COUNT, V_FIRST, V_CAPTURE, V_NUMBER, V_LAST, V_EXTRA, V_N };
/* The five exported tables, then two memos: for each distinct source side (source MAC, VLAN, IP version,
 * source IP, tunnel flag) and destination side of a packet, the entries of the five tables it touches, so a
 * packet like one seen before costs two lookups instead of up to six. The memos decide nothing: they only
 * remember where table_find put each key. */
enum { T_MACS, T_MAC_VLANS, T_IPS, T_PAIRS, T_DST_PAIRS, T_N, T_SRC_MEMO = T_N, T_DST_MEMO, T_ALL };
static const int TABLE_KEYS[T_ALL] = {1, 2, 3, 5, 5, 5, 5};
static const int TABLE_VALS[T_ALL] = {V_N, V_N, V_N, V_N, V_N, 4, 2};

typedef struct {
    PyObject_HEAD
    Table t[T_ALL];
} Sightings;

static void sightings_dealloc(Sightings *self) {
    for (int i = 0; i < T_ALL; i++)
        table_free(&self->t[i]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int sightings_init(Sightings *self, PyObject *args, PyObject *kw) {
    if (!PyArg_ParseTuple(args, ""))
        return -1;
    for (int i = 0; i < T_ALL; i++) {
        table_free(&self->t[i]);
        if (table_init(&self->t[i], TABLE_KEYS[i], TABLE_VALS[i]) < 0)
            return -1;
    }
    return 0;
}

/* Span.see on entry e (which exists): one more sighting (the first one at the earliest time keeps its capture
 * and number). */
static inline void bump(Table *t, Py_ssize_t e, int64_t ts, int64_t capture, int64_t number, int64_t extra) {
    int64_t *v = t->vals + (size_t)e * V_N;
    if (ts < v[V_FIRST]) {
        v[V_FIRST] = ts;
        v[V_CAPTURE] = capture;
        v[V_NUMBER] = number;
    } else if (ts > v[V_LAST]) {
        v[V_LAST] = ts;
    }
    v[V_COUNT]++;
    v[V_EXTRA] += extra;
}

/* Span.see for key k, creating its entry at the first sighting; returns the entry (-1 on memory error). */
static inline Py_ssize_t see(Table *t, const uint64_t *k, int64_t ts, int64_t capture, int64_t number,
                             int64_t extra) {
    int created;
    Py_ssize_t e = table_find(t, k, &created);
    if (e < 0)
        return -1;
    if (created) {
        int64_t *v = t->vals + (size_t)e * V_N;
        v[V_FIRST] = v[V_LAST] = ts;
        v[V_CAPTURE] = capture;
        v[V_NUMBER] = number;
    }
    bump(t, e, ts, capture, number, extra);
    return e;
}

static inline int unicast(int ver, uint64_t hi, uint64_t lo) {
    if (ver == 4) {
        uint64_t first = lo >> 24;
        return first != 0 && (lo >> 28) != 0xE && first < 240;
    }
    return !(hi == 0 && lo == 0) && (hi >> 56) != 0xFF;
}

/*
 * add(capture, rows, smac, dmac u64, has_smac, has_dmac u8, vlan i32, ipver u8, src_hi, src_lo, dst_hi, dst_lo
 *     u64, ip_tunnel u8, ttl i32, ts, number i64): InventoryBuilder.add_packet for each row, in order.
 */
static PyObject *sightings_add(Sightings *self, PyObject *args) {
    long long capture;
    PyObject *o[16];
    if (!PyArg_ParseTuple(args, "LOOOOOOOOOOOOOOO", &capture, &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &o[7], &o[8], &o[9], &o[10], &o[11], &o[12], &o[13], &o[14]))
        return NULL;
    Col c[15];
    memset(c, 0, sizeof(c));
    static const char *names[15] = {"rows", "smac", "dmac", "has_smac", "has_dmac", "vlan", "ipver", "src_hi",
                                    "src_lo", "dst_hi", "dst_lo", "ip_tunnel", "ttl", "ts", "number"};
    static const Py_ssize_t sizes[15] = {8, 8, 8, 1, 1, 4, 1, 8, 8, 8, 8, 1, 4, 8, 8};
    Py_ssize_t n = -1;
    for (int i = 0; i < 15; i++) {
        if (col_get(o[i], &c[i], sizes[i], 0, names[i]) < 0) {
            cols_release(c, 15);
            return NULL;
        }
        Py_ssize_t len = c[i].view.len / sizes[i];
        if (i > 0 && (n < 0 || len < n))
            n = len;
    }
    Py_ssize_t nrows = c[0].view.len / 8;
    const int64_t *rows = c[0].view.buf;
    for (Py_ssize_t r = 0; r < nrows; r++)
        if (rows[r] < 0 || rows[r] >= n) {
            cols_release(c, 15);
            PyErr_SetString(PyExc_IndexError, "row out of range");
            return NULL;
        }
    const uint64_t *smac = c[1].view.buf, *dmac = c[2].view.buf;
    const uint8_t *has_smac = c[3].view.buf, *has_dmac = c[4].view.buf, *ipver = c[6].view.buf;
    const int32_t *vlan = c[5].view.buf, *ttl = c[12].view.buf;
    const uint64_t *s_hi = c[7].view.buf, *s_lo = c[8].view.buf, *d_hi = c[9].view.buf, *d_lo = c[10].view.buf;
    const uint8_t *tunnel = c[11].view.buf;
    const int64_t *ts = c[13].view.buf, *number = c[14].view.buf;
    int failed = 0;
    Table *T = self->t;
    for (Py_ssize_t r = 0; r < nrows && !failed; r++) {
        Py_ssize_t i = rows[r];
        int64_t t = ts[i], num = number[i];
        uint64_t sm = smac[i], dm = dmac[i];
        int v = vlan[i];
        uint64_t vw = v >= 0 ? (uint64_t)v : MISSING_VLAN;
        int ver = ipver[i];
        int untunnelled = !tunnel[i];
        int tt = ttl[i];
        int64_t hop0 = tt == 32 || tt == 64 || tt == 128 || tt == 255;
        uint64_t k[MAX_KEY];
        int created;
        /* the source side: MAC, MAC+VLAN, source IP, MAC->IP pair */
        uint64_t memo[5] = {sm, ((uint64_t)has_smac[i] << 32) | (uint32_t)v, (uint64_t)ver | ((uint64_t)tunnel[i] << 8),
                            s_hi[i], s_lo[i]};
        Py_ssize_t m = table_find(&T[T_SRC_MEMO], memo, &created);
        if (m < 0) {
            failed = 1;
            break;
        }
        int64_t *got = T[T_SRC_MEMO].vals + (size_t)m * 4; /* entry + 1 per table, 0: not touched */
        if (created) {
            int valid_smac = has_smac[i] && !((sm >> 40) & 1) && sm != 0;
            Py_ssize_t e;
            if (valid_smac) {
                k[0] = sm;
                if ((e = see(&T[T_MACS], k, t, capture, num, 0)) < 0) {
                    failed = 1;
                    break;
                }
                got[0] = e + 1;
                if (v >= 0) {
                    k[1] = (uint64_t)v;
                    if ((e = see(&T[T_MAC_VLANS], k, t, capture, num, 0)) < 0) {
                        failed = 1;
                        break;
                    }
                    got[1] = e + 1;
                }
            }
            if (ver != 0 && unicast(ver, s_hi[i], s_lo[i])) {
                k[0] = (uint64_t)ver;
                k[1] = s_hi[i];
                k[2] = s_lo[i];
                if ((e = see(&T[T_IPS], k, t, capture, num, 0)) < 0) {
                    failed = 1;
                    break;
                }
                got[2] = e + 1;
                if (valid_smac && untunnelled) {
                    k[0] = sm;
                    k[1] = (uint64_t)ver;
                    k[2] = s_hi[i];
                    k[3] = s_lo[i];
                    k[4] = vw;
                    if ((e = see(&T[T_PAIRS], k, t, capture, num, hop0)) < 0) {
                        failed = 1;
                        break;
                    }
                    got[3] = e + 1;
                }
            }
        } else {
            if (got[0])
                bump(&T[T_MACS], got[0] - 1, t, capture, num, 0);
            if (got[1])
                bump(&T[T_MAC_VLANS], got[1] - 1, t, capture, num, 0);
            if (got[2])
                bump(&T[T_IPS], got[2] - 1, t, capture, num, 0);
            if (got[3])
                bump(&T[T_PAIRS], got[3] - 1, t, capture, num, hop0);
        }
        if (ver == 0)
            continue;
        /* the destination side: destination IP, MAC<-IP pair */
        uint64_t dmemo[5] = {dm, ((uint64_t)has_dmac[i] << 32) | (uint32_t)v,
                             (uint64_t)ver | ((uint64_t)tunnel[i] << 8), d_hi[i], d_lo[i]};
        m = table_find(&T[T_DST_MEMO], dmemo, &created);
        if (m < 0) {
            failed = 1;
            break;
        }
        got = T[T_DST_MEMO].vals + (size_t)m * 2;
        if (created) {
            if (has_dmac[i] && ((dm >> 40) & 1))
                continue; /* broadcast / multicast frame: the destination IP is not one host */
            if (unicast(ver, d_hi[i], d_lo[i])) {
                Py_ssize_t e;
                k[0] = (uint64_t)ver;
                k[1] = d_hi[i];
                k[2] = d_lo[i];
                if ((e = see(&T[T_IPS], k, t, capture, num, 0)) < 0) {
                    failed = 1;
                    break;
                }
                got[0] = e + 1;
                if (has_dmac[i] && untunnelled) {
                    k[0] = dm;
                    k[1] = (uint64_t)ver;
                    k[2] = d_hi[i];
                    k[3] = d_lo[i];
                    k[4] = vw;
                    if ((e = see(&T[T_DST_PAIRS], k, t, capture, num, 0)) < 0) {
                        failed = 1;
                        break;
                    }
                    got[1] = e + 1;
                }
            }
        } else {
            if (got[0])
                bump(&T[T_IPS], got[0] - 1, t, capture, num, 0);
            if (got[1])
                bump(&T[T_DST_PAIRS], got[1] - 1, t, capture, num, 0);
        }
    }
    cols_release(c, 15);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

/* export(table) -> (n, keys, values): table 0 macs, 1 mac_vlans, 2 ips, 3 pairs, 4 dst_pairs; values are
 * count, first, capture, number, last, extra (int64) per key. */
static PyObject *sightings_export(Sightings *self, PyObject *args) {
    int which;
    if (!PyArg_ParseTuple(args, "i", &which))
        return NULL;
    if (which < 0 || which >= T_N) {
        PyErr_SetString(PyExc_ValueError, "no such table");
        return NULL;
    }
    return table_export(&self->t[which]);
}

/* absorb(table, n, keys, values, captures): merge another accumulator's export of that table (n entries, as
 * export gives them) into this one, as if its packets came after this one's (Span.absorb: counts and extras
 * add, the earliest first sighting wins, ties keep this one's). captures: native int64, this accumulator's
 * capture number for each of the other's capture numbers. */
static PyObject *sightings_absorb(Sightings *self, PyObject *args) {
    int which;
    Py_ssize_t n;
    Py_buffer keys, vals, remap;
    if (!PyArg_ParseTuple(args, "iny*y*y*", &which, &n, &keys, &vals, &remap))
        return NULL;
    PyObject *result = NULL;
    if (which < 0 || which >= T_N) {
        PyErr_SetString(PyExc_ValueError, "no such table");
        goto done;
    }
    Table *t = &self->t[which];
    int nkey = t->nkey;
    Py_ssize_t ncap = remap.len / (Py_ssize_t)sizeof(int64_t);
    if (n < 0 || keys.len != n * nkey * (Py_ssize_t)sizeof(uint64_t) ||
        vals.len != n * V_N * (Py_ssize_t)sizeof(int64_t) || remap.len % (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "absorb: sizes do not match the table");
        goto done;
    }
    const uint64_t *kk = keys.buf;
    const int64_t *vv = vals.buf, *map = remap.buf;
    for (Py_ssize_t j = 0; j < n; j++) {
        const int64_t *o = vv + (size_t)j * V_N;
        if (o[V_CAPTURE] < 0 || o[V_CAPTURE] >= ncap) {
            PyErr_SetString(PyExc_IndexError, "absorb: capture number out of range");
            goto done;
        }
        int created;
        Py_ssize_t e = table_find(t, kk + (size_t)j * nkey, &created);
        if (e < 0)
            goto done;
        int64_t *v = t->vals + (size_t)e * V_N;
        if (created) {
            memcpy(v, o, sizeof(int64_t) * V_N);
            v[V_CAPTURE] = map[o[V_CAPTURE]];
            continue;
        }
        v[V_COUNT] += o[V_COUNT];
        v[V_EXTRA] += o[V_EXTRA];
        if (o[V_FIRST] < v[V_FIRST]) {
            v[V_FIRST] = o[V_FIRST];
            v[V_CAPTURE] = map[o[V_CAPTURE]];
            v[V_NUMBER] = o[V_NUMBER];
        }
        if (o[V_LAST] > v[V_LAST])
            v[V_LAST] = o[V_LAST];
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&keys);
    PyBuffer_Release(&vals);
    PyBuffer_Release(&remap);
    return result;
}

static PyObject *sightings_clear(Sightings *self, PyObject *unused) {
    for (int i = 0; i < T_ALL; i++) /* the memos point into the tables: cleared with them */
        table_clear(&self->t[i]);
    Py_RETURN_NONE;
}

static Py_ssize_t sightings_len(Sightings *self) {
    Py_ssize_t n = 0;
    for (int i = 0; i < T_N; i++)
        n += self->t[i].n;
    return n;
}

static PyMethodDef sightings_methods[] = {
    {"add", (PyCFunction)sightings_add, METH_VARARGS, "Account the addresses of a decoded batch."},
    {"export", (PyCFunction)sightings_export, METH_VARARGS, "One table's keys and values."},
    {"absorb", (PyCFunction)sightings_absorb, METH_VARARGS, "Merge another accumulator's export of a table."},
    {"clear", (PyCFunction)sightings_clear, METH_NOARGS, "Forget everything."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods sightings_seq = {.sq_length = (lenfunc)sightings_len};

static PyTypeObject SightingsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wardwatch.inventory._accum.Sightings",
    .tp_basicsize = sizeof(Sightings),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Sightings(): the inventory's per-address accumulators.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)sightings_init,
    .tp_dealloc = (destructor)sightings_dealloc,
    .tp_methods = sightings_methods,
    .tp_as_sequence = &sightings_seq,
};

/* ------------------------------------------------------------------------------------------------------- */
/* StreamHeads                                                                                                */

/* Index of the entry with key k, or -1 when absent (nothing inserted). */
static Py_ssize_t table_get(const Table *t, const uint64_t *k) {
    uint64_t h = hash_key(k, t->nkey);
    size_t i = h & t->mask;
    for (;;) {
        int32_t e = t->slots[i];
        if (e < 0)
            return -1;
        if (t->hashes[e] == h && memcmp(t->keys + (size_t)e * t->nkey, k, sizeof(uint64_t) * t->nkey) == 0)
            return e;
        i = (i + 1) & t->mask;
    }
}

/* streams.StreamHeads' rules: per direction of a TCP connection, the payload packets seen (a pure SYN sets
 * both directions back to 0); the n-th one gets index n while n < limit. */
typedef struct {
    PyObject_HEAD
    Table t;
    long long limit;
} StreamHeadsObject;

static void streamheads_dealloc(StreamHeadsObject *self) {
    table_free(&self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int streamheads_init(StreamHeadsObject *self, PyObject *args, PyObject *kw) {
    long long limit;
    if (!PyArg_ParseTuple(args, "L", &limit))
        return -1;
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "a stream head of at least one packet");
        return -1;
    }
    self->limit = limit;
    table_free(&self->t);
    return table_init(&self->t, 5, 1);
}

/*
 * index(rows, length i64 (one per row), ipver u8, src_hi, src_lo, dst_hi, dst_lo u64, sport, dport i32,
 *       tflags u8, out i32): out[row] = the stream-head index of each row, in order (rows not given untouched).
 */
static PyObject *streamheads_index(StreamHeadsObject *self, PyObject *args) {
    PyObject *o[11];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &o[9], &o[10]))
        return NULL;
    Col c[11];
    memset(c, 0, sizeof(c));
    static const char *names[11] = {"rows", "length", "ipver", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport",
                                    "dport", "tflags", "out"};
    static const Py_ssize_t sizes[11] = {8, 8, 1, 8, 8, 8, 8, 4, 4, 1, 4};
    Py_ssize_t n = -1;
    for (int i = 0; i < 11; i++) {
        if (col_get(o[i], &c[i], sizes[i], 0, names[i]) < 0) {
            cols_release(c, 11);
            return NULL;
        }
        Py_ssize_t len = c[i].view.len / sizes[i];
        if (i >= 2 && (n < 0 || len < n))
            n = len;
    }
    Py_ssize_t nrows = c[0].view.len / 8;
    if (c[1].view.len / 8 != nrows || c[10].view.readonly) {
        cols_release(c, 11);
        PyErr_SetString(PyExc_ValueError, "index: one length per row and a writable output");
        return NULL;
    }
    const int64_t *rows = c[0].view.buf, *length = c[1].view.buf;
    for (Py_ssize_t r = 0; r < nrows; r++)
        if (rows[r] < 0 || rows[r] >= n) {
            cols_release(c, 11);
            PyErr_SetString(PyExc_IndexError, "row out of range");
            return NULL;
        }
    const uint8_t *ipver = c[2].view.buf, *tflags = c[9].view.buf;
    const uint64_t *s_hi = c[3].view.buf, *s_lo = c[4].view.buf, *d_hi = c[5].view.buf, *d_lo = c[6].view.buf;
    const int32_t *sport = c[7].view.buf, *dport = c[8].view.buf;
    int32_t *out = c[10].view.buf;
    Table *t = &self->t;
    int failed = 0;
    for (Py_ssize_t r = 0; r < nrows; r++) {
        Py_ssize_t i = rows[r];
        uint64_t sp = (uint16_t)sport[i], dp = (uint16_t)dport[i], ver = ipver[i];
        uint64_t fwd[5] = {ver | sp << 8 | dp << 24, s_hi[i], s_lo[i], d_hi[i], d_lo[i]};
        uint8_t fl = tflags[i];
        if ((fl & SYN) && !(fl & ACK)) {
            uint64_t rev[5] = {ver | dp << 8 | sp << 24, d_hi[i], d_lo[i], s_hi[i], s_lo[i]};
            Py_ssize_t e = table_get(t, fwd);
            if (e >= 0)
                t->vals[e] = 0;
            e = table_get(t, rev);
            if (e >= 0)
                t->vals[e] = 0;
        }
        if (length[r] <= 0) {
            out[i] = -1;
            continue;
        }
        int created;
        Py_ssize_t e = table_find(t, fwd, &created);
        if (e < 0) {
            failed = 1;
            break;
        }
        int64_t seen = t->vals[e];
        if (seen >= self->limit) {
            out[i] = -1;
        } else {
            t->vals[e] = seen + 1;
            out[i] = (int32_t)seen;
        }
    }
    cols_release(c, 11);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

static Py_ssize_t streamheads_len(StreamHeadsObject *self) { return self->t.n; }

static PyMethodDef streamheads_methods[] = {
    {"index", (PyCFunction)streamheads_index, METH_VARARGS, "Stream-head indexes of a batch's TCP rows."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods streamheads_seq = {.sq_length = (lenfunc)streamheads_len};

static PyTypeObject StreamHeadsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wardwatch.inventory._accum.StreamHeads",
    .tp_basicsize = sizeof(StreamHeadsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "StreamHeads(limit): the first payload packets of each direction of each TCP connection.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)streamheads_init,
    .tp_dealloc = (destructor)streamheads_dealloc,
    .tp_methods = streamheads_methods,
    .tp_as_sequence = &streamheads_seq,
};

/* ------------------------------------------------------------------------------------------------------- */
/* StreamTable                                                                                                */

/*
 * engine._Streams' rules over a batch (what _Streams._offer and dissect.reassembly.Reassembler do one packet at a
 * time): which TCP connections the stream dissectors claimed, the first payload packets of each direction of a
 * claimed connection kept within the caps, the claimer's pattern counted past them, and each connection handed
 * back when it ends (FIN, RST, a pure SYN, both directions at their byte cap, the end of the capture). Laying
 * out segments that arrived in order is done here; any other arrival (reordered, overlapping, with a hole) is
 * handed back segment by segment for dissect.reassembly to lay out. This is the one C helper that reads packet
 * bytes: it copies payload slices whose bounds it checks against the buffer they come from, and searches them
 * for the pattern; it interprets nothing.
 */

#define ST_MAX_DISSECTORS 32
#define ST_LOOKBACK 8 /* Reassembler._store: a plain retransmission is looked for among the last 8 segments */

typedef struct {
    int64_t off, number, ts;
    Py_ssize_t len, pos; /* bytes, and where they start in StHalf.data */
} StSeg;

typedef struct {
    uint64_t hi, lo;
    int64_t port;
    int has_mac;
    uint64_t mac;
    int32_t vlan;
    int64_t base; /* sequence number of offset 0 */
    StSeg *segs;
    Py_ssize_t nseg, capseg;
    char *data; /* the kept segments' bytes, in arrival order */
    Py_ssize_t dlen, dcap;
    int64_t bytes, packets, retrans;
    int truncated;
} StHalf;

typedef struct {
    int used;
    uint64_t hi, lo;
    int64_t port;
    int64_t next, count; /* _TailCounts: next sequence number, occurrences */
    Py_ssize_t nlast;    /* the last bytes (a pattern's beginning) */
    unsigned char *last;
} StTail;

typedef struct {
    Py_ssize_t live; /* index in StreamTable.live */
    int64_t entry;   /* index in StreamTable.keys */
    uint32_t mask;   /* the claimers (bit k: dissector k) */
    int64_t limit;   /* payload packets per direction the claimers read */
    int pattern;     /* the dissector whose pattern is counted past them, -1 for none */
    int closed, nhalves, ver;
    int64_t opened; /* order of the first segment, -1 before */
    uint64_t peer_hi, peer_lo;
    int64_t peer_port;
    StHalf h[2];
    StTail t[2];
} StConn;

typedef struct {
    PyObject_HEAD
    Table keys; /* canonical connection key -> StConn* (0: not claimed) */
    StConn **live;
    Py_ssize_t nlive, caplive;
    int ndis;
    int64_t packets[ST_MAX_DISSECTORS];
    PyObject *patterns[ST_MAX_DISSECTORS]; /* bytes, empty for none */
    int64_t limit, stream_bytes, segments, total_bytes, buffered, refused, cut, opened;
    unsigned char *scratch;
    Py_ssize_t nscratch;
} StreamTableObject;

static void st_conn_free(StConn *c) {
    for (int k = 0; k < 2; k++) {
        PyMem_Free(c->h[k].segs);
        PyMem_Free(c->h[k].data);
        PyMem_Free(c->t[k].last);
    }
    PyMem_Free(c);
}

static void st_clear(StreamTableObject *self) {
    for (Py_ssize_t i = 0; i < self->nlive; i++)
        st_conn_free(self->live[i]);
    PyMem_Free(self->live);
    self->live = NULL;
    self->nlive = self->caplive = 0;
    table_free(&self->keys);
    for (int k = 0; k < ST_MAX_DISSECTORS; k++)
        Py_CLEAR(self->patterns[k]);
    PyMem_Free(self->scratch);
    self->scratch = NULL;
    self->nscratch = 0;
}

static void streamtable_dealloc(StreamTableObject *self) {
    st_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* StreamTable(dissectors: sequence of (packets, pattern bytes), stream_bytes, segments, total_bytes) */
static int streamtable_init(StreamTableObject *self, PyObject *args, PyObject *kw) {
    PyObject *dis;
    long long sb, segs, total;
    if (!PyArg_ParseTuple(args, "OLLL", &dis, &sb, &segs, &total))
        return -1;
    st_clear(self);
    PyObject *seq = PySequence_Fast(dis, "dissectors: a sequence of (packets, pattern)");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > ST_MAX_DISSECTORS || sb < 1 || segs < 1 || total < 1) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "1 to 32 dissectors and positive limits");
        return -1;
    }
    self->ndis = (int)n;
    self->limit = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        long long packets;
        PyObject *pattern;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "LS", &packets, &pattern)) {
            Py_DECREF(seq);
            return -1;
        }
        if (packets < 1) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "a dissector reads at least one packet");
            return -1;
        }
        self->packets[k] = packets;
        Py_INCREF(pattern);
        self->patterns[k] = pattern;
        if (packets > self->limit)
            self->limit = packets;
    }
    Py_DECREF(seq);
    self->stream_bytes = sb;
    self->segments = segs;
    self->total_bytes = total;
    self->buffered = self->refused = self->cut = self->opened = 0;
    return table_init(&self->keys, 5, 1);
}

static inline int64_t st_rel(int64_t seq, int64_t base) {
    int64_t d = (int64_t)(((uint64_t)seq - (uint64_t)base) & 0xFFFFFFFFULL);
    return d >= (1LL << 31) ? d - (1LL << 32) : d;
}

static PyObject *st_ip(int ver, uint64_t hi, uint64_t lo) {
    unsigned char b[16];
    if (ver == 6) {
        for (int i = 0; i < 8; i++) {
            b[i] = (unsigned char)(hi >> (56 - 8 * i));
            b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
        }
        return PyBytes_FromStringAndSize((const char *)b, 16);
    }
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(lo >> (24 - 8 * i));
    return PyBytes_FromStringAndSize((const char *)b, 4);
}

/* Remove c from the table (its key can be claimed again) and from the live list; c itself stays allocated. */
static void st_unlink(StreamTableObject *self, StConn *c) {
    self->keys.vals[c->entry] = 0;
    Py_ssize_t i = c->live, last = self->nlive - 1;
    if (i != last) {
        self->live[i] = self->live[last];
        self->live[i]->live = i;
    }
    self->nlive--;
}

/* (mac, ip, port, vlan, packets, retransmissions, truncated, counted, data, starts) of a contiguous half, or
 * (..., None, [(offset, bytes, frame, ts), ...]) for Reassembler's general layout. */
static PyObject *st_half(StreamTableObject *self, StConn *c, StHalf *h) {
    int64_t counted = 0;
    if (c->pattern >= 0)
        for (int k = 0; k < 2; k++)
            if (c->t[k].used && c->t[k].hi == h->hi && c->t[k].lo == h->lo && c->t[k].port == h->port) {
                counted = c->t[k].count;
                break;
            }
    int contiguous = h->nseg > 0;
    for (Py_ssize_t i = 0; contiguous && i + 1 < h->nseg; i++)
        contiguous = h->segs[i + 1].off == h->segs[i].off + (int64_t)h->segs[i].len;
    PyObject *data = NULL, *layout = NULL;
    if (contiguous || h->nseg == 0) {
        Py_ssize_t len = h->dlen < self->stream_bytes ? h->dlen : (Py_ssize_t)self->stream_bytes;
        data = PyBytes_FromStringAndSize(h->data ? h->data : "", len);
        Py_ssize_t nstart = 0;
        int64_t origin = h->nseg ? h->segs[0].off : 0;
        for (Py_ssize_t i = 0; i < h->nseg; i++)
            nstart += h->segs[i].off - origin < len;
        layout = PyTuple_New(nstart);
        if (!data || !layout)
            goto fail;
        Py_ssize_t j = 0;
        for (Py_ssize_t i = 0; i < h->nseg; i++) {
            StSeg *s = &h->segs[i];
            if (s->off - origin >= len)
                continue;
            PyObject *t = Py_BuildValue("(LLL)", (long long)(s->off - origin), (long long)s->number, (long long)s->ts);
            if (!t)
                goto fail;
            PyTuple_SET_ITEM(layout, j++, t);
        }
    } else {
        data = Py_None;
        Py_INCREF(data);
        layout = PyList_New(h->nseg);
        if (!layout)
            goto fail;
        for (Py_ssize_t i = 0; i < h->nseg; i++) {
            StSeg *s = &h->segs[i];
            PyObject *t = Py_BuildValue("(Ly#LL)", (long long)s->off, h->data + s->pos, s->len, (long long)s->number,
                                        (long long)s->ts);
            if (!t)
                goto fail;
            PyList_SET_ITEM(layout, i, t);
        }
    }
    PyObject *mac;
    if (h->has_mac) {
        unsigned char m[6];
        for (int i = 0; i < 6; i++)
            m[i] = (unsigned char)(h->mac >> (40 - 8 * i));
        mac = PyBytes_FromStringAndSize((const char *)m, 6);
    } else {
        mac = Py_None;
        Py_INCREF(mac);
    }
    PyObject *vlan = h->vlan >= 0 ? PyLong_FromLong(h->vlan) : (Py_INCREF(Py_None), Py_None);
    PyObject *ip = st_ip(c->ver, h->hi, h->lo);
    if (!mac || !vlan || !ip) {
        Py_XDECREF(mac);
        Py_XDECREF(vlan);
        Py_XDECREF(ip);
        goto fail;
    }
    return Py_BuildValue("(NNLNLLOLNN)", mac, ip, (long long)h->port, vlan, (long long)h->packets,
                         (long long)h->retrans, h->truncated ? Py_True : Py_False, (long long)counted, data, layout);
fail:
    Py_XDECREF(data);
    Py_XDECREF(layout);
    return NULL;
}

/* The connection as (claimers mask, closed, peer ip, peer port, halves) appended to out; c is unlinked and freed
 * either way. */
static int st_finish(StreamTableObject *self, StConn *c, PyObject *out) {
    st_unlink(self, c);
    for (int k = 0; k < c->nhalves; k++)
        self->buffered -= c->h[k].bytes;
    int rc = -1;
    PyObject *halves = PyTuple_New(c->nhalves);
    if (halves) {
        int ok = 1;
        for (int k = 0; k < c->nhalves && ok; k++) {
            PyObject *h = st_half(self, c, &c->h[k]);
            if (h)
                PyTuple_SET_ITEM(halves, k, h);
            else
                ok = 0;
        }
        PyObject *peer = ok ? st_ip(c->ver, c->peer_hi, c->peer_lo) : NULL;
        PyObject *conn = peer ? Py_BuildValue("(kONLN)", (unsigned long)c->mask, c->closed ? Py_True : Py_False, peer,
                                              (long long)c->peer_port, halves)
                              : NULL;
        if (conn) {
            halves = NULL;
            rc = PyList_Append(out, conn);
            Py_DECREF(conn);
        } else {
            Py_XDECREF(peer);
        }
        Py_XDECREF(halves);
    }
    st_conn_free(c);
    return rc;
}

/* A FIN, RST or pure SYN of a claimed connection (Reassembler.close): handed back if it sent data, else forgotten. */
static int st_end(StreamTableObject *self, StConn *c, PyObject *out) {
    if (c->nhalves == 0) {
        st_unlink(self, c);
        st_conn_free(c);
        return 0;
    }
    c->closed = 1;
    return st_finish(self, c, out);
}

static int st_grow(void **p, Py_ssize_t *cap, Py_ssize_t need, size_t item) {
    if (need <= *cap)
        return 0;
    Py_ssize_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    void *q = PyMem_Realloc(*p, item * (size_t)n);
    if (!q) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = n;
    return 0;
}

/* Reassembler._store */
static int st_store(StreamTableObject *self, StHalf *h, int64_t seq, const char *p, Py_ssize_t n, int64_t number,
                    int64_t ts) {
    int64_t off = st_rel(seq, h->base), sb = self->stream_bytes;
    if (off >= sb || off + n <= -sb) {
        h->truncated = h->truncated || off >= sb;
        self->cut++;
        return 0;
    }
    if (h->nseg >= self->segments) {
        h->truncated = 1;
        self->cut++;
        return 0;
    }
    if (off + n > sb) {
        n = (Py_ssize_t)(sb - off);
        h->truncated = 1;
    }
    if (self->buffered + n > self->total_bytes) {
        self->refused++;
        h->truncated = 1;
        return 0;
    }
    for (Py_ssize_t i = h->nseg > ST_LOOKBACK ? h->nseg - ST_LOOKBACK : 0; i < h->nseg; i++)
        if (h->segs[i].off == off && h->segs[i].len == n && memcmp(h->data + h->segs[i].pos, p, (size_t)n) == 0) {
            h->retrans++;
            return 0;
        }
    if (st_grow((void **)&h->segs, &h->capseg, h->nseg + 1, sizeof(StSeg)) < 0 ||
        st_grow((void **)&h->data, &h->dcap, h->dlen + n, 1) < 0)
        return -1;
    memcpy(h->data + h->dlen, p, (size_t)n);
    h->segs[h->nseg++] = (StSeg){.off = off, .number = number, .ts = ts, .len = n, .pos = h->dlen};
    h->dlen += n;
    h->bytes += n;
    self->buffered += n;
    return 0;
}

/* _TailCounts.see */
static int st_tail(StreamTableObject *self, StConn *c, uint64_t hi, uint64_t lo, int64_t port, int64_t seq,
                   const char *p, Py_ssize_t n) {
    PyObject *pattern = self->patterns[c->pattern];
    const char *pat = PyBytes_AS_STRING(pattern);
    Py_ssize_t m = PyBytes_GET_SIZE(pattern), keep = m - 1;
    StTail *t = NULL;
    for (int k = 0; k < 2 && !t; k++)
        if (c->t[k].used && c->t[k].hi == hi && c->t[k].lo == lo && c->t[k].port == port)
            t = &c->t[k];
    for (int k = 0; k < 2 && !t; k++)
        if (!c->t[k].used) {
            t = &c->t[k];
            t->used = 1;
            t->hi = hi;
            t->lo = lo;
            t->port = port;
            t->next = seq;
            t->count = t->nlast = 0;
            if (keep > 0 && !(t->last = PyMem_Malloc((size_t)keep))) {
                PyErr_NoMemory();
                return -1;
            }
        }
    if (!t)
        return 0; /* a third endpoint cannot happen: the key names both */
    int64_t rel = st_rel(seq, t->next);
    if (rel < 0) {
        if (-rel >= n)
            return 0;
        p += -rel;
        n -= (Py_ssize_t)-rel;
        seq = (int64_t)(((uint64_t)seq - (uint64_t)rel) & 0xFFFFFFFFULL);
        rel = 0;
    }
    Py_ssize_t prefix = rel == 0 ? t->nlast : 0, len = prefix + n;
    if (len > self->nscratch) {
        unsigned char *s = PyMem_Realloc(self->scratch, (size_t)len);
        if (!s) {
            PyErr_NoMemory();
            return -1;
        }
        self->scratch = s;
        self->nscratch = len;
    }
    unsigned char *text = self->scratch;
    if (prefix)
        memcpy(text, t->last, (size_t)prefix);
    memcpy(text + prefix, p, (size_t)n);
    for (Py_ssize_t i = 0; i + m <= len;) { /* bytes.count: non-overlapping, from the left */
        if (memcmp(text + i, pat, (size_t)m) == 0) {
            t->count++;
            i += m;
        } else {
            i++;
        }
    }
    if (keep > 0) {
        Py_ssize_t k = len < keep ? len : keep;
        memmove(t->last, text + len - k, (size_t)k);
        t->nlast = k;
    } else {
        t->nlast = 0;
    }
    t->next = (int64_t)(((uint64_t)seq + (uint64_t)n) & 0xFFFFFFFFULL);
    return 0;
}

#define ST_NCOLS 20

/*
 * feed(rows i64, buf, extra, ipver u8, src_hi, src_lo, dst_hi, dst_lo u64, sport, dport i32, tflags u8, tseq i64,
 *      number i64, ts i64, has_smac u8, smac u64, vlan i32, index i32, claim u32, pay_start i64, pay_end i64,
 *      in_extra u8) -> the connections that ended, in order (see st_finish). rows: the TCP rows that may matter,
 *      in order; index: the stream-head index; claim: the dissectors whose claim test a first payload packet
 *      passes; the payload of a row is buf[pay_start:pay_end], or extra[...] where in_extra.
 */
static PyObject *streamtable_feed(StreamTableObject *self, PyObject *args) {
    PyObject *o[ST_NCOLS], *bufobj, *extraobj;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOOOOOOOOO", &o[0], &bufobj, &extraobj, &o[1], &o[2], &o[3], &o[4], &o[5],
                          &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &o[12], &o[13], &o[14], &o[15], &o[16], &o[17],
                          &o[18], &o[19]))
        return NULL;
    if (self->ndis == 0) {
        PyErr_SetString(PyExc_RuntimeError, "StreamTable not initialised");
        return NULL;
    }
    static const char *names[ST_NCOLS] = {"rows",  "ipver",  "src_hi",   "src_lo", "dst_hi", "dst_lo",
                                          "sport", "dport",  "tflags",   "tseq",   "number", "ts",
                                          "has_smac", "smac", "vlan",    "index",  "claim",  "pay_start",
                                          "pay_end",  "in_extra"};
    static const Py_ssize_t sizes[ST_NCOLS] = {8, 1, 8, 8, 8, 8, 4, 4, 1, 8, 8, 8, 1, 8, 4, 4, 4, 8, 8, 1};
    Col c[ST_NCOLS];
    memset(c, 0, sizeof(c));
    Py_buffer buf, extra;
    int have_buf = 0, have_extra = 0;
    PyObject *out = NULL;
    Py_ssize_t n = -1;
    for (int i = 0; i < ST_NCOLS; i++) {
        if (col_get(o[i], &c[i], sizes[i], 0, names[i]) < 0)
            goto done;
        Py_ssize_t len = c[i].view.len / sizes[i];
        if (i >= 1 && (n < 0 || len < n))
            n = len;
    }
    if (PyObject_GetBuffer(bufobj, &buf, PyBUF_SIMPLE) < 0)
        goto done;
    have_buf = 1;
    if (PyObject_GetBuffer(extraobj, &extra, PyBUF_SIMPLE) < 0)
        goto done;
    have_extra = 1;
    const int64_t *rows = c[0].view.buf;
    Py_ssize_t nrows = c[0].view.len / 8;
    const uint8_t *ipver = c[1].view.buf, *tflags = c[8].view.buf, *has_smac = c[12].view.buf, *in_extra = c[19].view.buf;
    const uint64_t *s_hi = c[2].view.buf, *s_lo = c[3].view.buf, *d_hi = c[4].view.buf, *d_lo = c[5].view.buf,
                   *smac = c[13].view.buf;
    const int32_t *sport = c[6].view.buf, *dport = c[7].view.buf, *vlan = c[14].view.buf, *index = c[15].view.buf;
    const uint32_t *claim = c[16].view.buf;
    const int64_t *tseq = c[9].view.buf, *number = c[10].view.buf, *ts = c[11].view.buf, *pstart = c[17].view.buf,
                  *pend = c[18].view.buf;
    for (Py_ssize_t r = 0; r < nrows; r++) {
        Py_ssize_t i = rows[r];
        Py_ssize_t size = i >= 0 && i < n && in_extra[i] ? extra.len : buf.len;
        if (i < 0 || i >= n || pstart[i] < 0 || pend[i] < pstart[i] || pend[i] > size) {
            PyErr_SetString(PyExc_IndexError, "feed: a row or its payload slice out of range");
            goto done;
        }
    }
    out = PyList_New(0);
    if (!out)
        goto done;
    for (Py_ssize_t r = 0; r < nrows; r++) {
        Py_ssize_t i = rows[r];
        if (sport[i] < 0 || dport[i] < 0)
            continue;
        int ver = ipver[i];
        uint64_t sp = (uint16_t)sport[i], dp = (uint16_t)dport[i];
        int src_first = s_hi[i] < d_hi[i] || (s_hi[i] == d_hi[i] && (s_lo[i] < d_lo[i] || (s_lo[i] == d_lo[i] && sp <= dp)));
        uint64_t key[5];
        if (src_first) {
            key[0] = (uint64_t)ver | sp << 8 | dp << 24;
            key[1] = s_hi[i], key[2] = s_lo[i], key[3] = d_hi[i], key[4] = d_lo[i];
        } else {
            key[0] = (uint64_t)ver | dp << 8 | sp << 24;
            key[1] = d_hi[i], key[2] = d_lo[i], key[3] = s_hi[i], key[4] = s_lo[i];
        }
        Py_ssize_t e = table_get(&self->keys, key);
        StConn *conn = e >= 0 ? (StConn *)(intptr_t)self->keys.vals[e] : NULL;
        uint8_t fl = tflags[i];
        int64_t idx = index[i], seq = tseq[i] < 0 ? 0 : tseq[i];
        const char *pay = (const char *)(in_extra[i] ? extra.buf : buf.buf) + pstart[i];
        Py_ssize_t plen = (Py_ssize_t)(pend[i] - pstart[i]);
        if ((fl & 0x12) == SYN && conn) {
            if (st_end(self, conn, out) < 0)
                goto fail;
            conn = NULL;
        }
        if (idx >= 0 && idx < self->limit) {
            if (idx == 0 && !conn && claim[i]) {
                uint32_t mask = claim[i] & (self->ndis >= 32 ? 0xFFFFFFFFu : ((1u << self->ndis) - 1));
                if (mask) {
                    int created;
                    if (e < 0 && (e = table_find(&self->keys, key, &created)) < 0)
                        goto fail;
                    if (st_grow((void **)&self->live, &self->caplive, self->nlive + 1, sizeof(StConn *)) < 0)
                        goto fail;
                    conn = PyMem_Calloc(1, sizeof(StConn));
                    if (!conn) {
                        PyErr_NoMemory();
                        goto fail;
                    }
                    conn->entry = e;
                    conn->live = self->nlive;
                    conn->mask = mask;
                    conn->pattern = -1;
                    conn->opened = -1;
                    conn->ver = ver;
                    for (int k = 0; k < self->ndis; k++)
                        if (mask >> k & 1) {
                            if (self->packets[k] > conn->limit)
                                conn->limit = self->packets[k];
                            if (conn->pattern < 0 && PyBytes_GET_SIZE(self->patterns[k]) > 0)
                                conn->pattern = k;
                        }
                    self->live[self->nlive++] = conn;
                    self->keys.vals[e] = (int64_t)(intptr_t)conn;
                }
            }
            if (conn && idx < conn->limit) { /* Reassembler.add */
                StHalf *h = NULL;
                for (int k = 0; k < conn->nhalves && !h; k++)
                    if (conn->h[k].hi == s_hi[i] && conn->h[k].lo == s_lo[i] && conn->h[k].port == (int64_t)sp)
                        h = &conn->h[k];
                if (!h) {
                    if (conn->nhalves == 2)
                        continue; /* cannot happen: the key names both endpoints */
                    if (conn->nhalves == 0) {
                        conn->opened = self->opened++;
                        conn->peer_hi = d_hi[i];
                        conn->peer_lo = d_lo[i];
                        conn->peer_port = (int64_t)dp;
                    }
                    h = &conn->h[conn->nhalves++];
                    h->hi = s_hi[i];
                    h->lo = s_lo[i];
                    h->port = (int64_t)sp;
                    h->has_mac = has_smac[i] != 0;
                    h->mac = smac[i];
                    h->vlan = vlan[i];
                    h->base = seq;
                }
                h->packets++;
                if (plen > 0 && st_store(self, h, seq, pay, plen, number[i], ts[i]) < 0)
                    goto fail;
                if (fl & (FIN | RST)) {
                    conn->closed = 1;
                    if (st_finish(self, conn, out) < 0)
                        goto fail;
                } else if (conn->nhalves == 2 && conn->h[0].truncated && conn->h[1].truncated) {
                    if (st_finish(self, conn, out) < 0)
                        goto fail;
                }
                continue;
            }
        }
        if (plen > 0 && conn && conn->pattern >= 0 && st_tail(self, conn, s_hi[i], s_lo[i], (int64_t)sp, seq, pay, plen) < 0)
            goto fail;
        if ((fl & (FIN | RST)) && conn && st_end(self, conn, out) < 0)
            goto fail;
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    cols_release(c, ST_NCOLS);
    if (have_buf)
        PyBuffer_Release(&buf);
    if (have_extra)
        PyBuffer_Release(&extra);
    return out;
}

static int st_opened_order(const void *a, const void *b) {
    int64_t x = (*(StConn *const *)a)->opened, y = (*(StConn *const *)b)->opened;
    return (x > y) - (x < y);
}

/* finish() -> the connections still open that sent data, in the order they opened (the capture ended). */
static PyObject *streamtable_finish(StreamTableObject *self, PyObject *unused) {
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    Py_ssize_t n = self->nlive;
    StConn **open = PyMem_Malloc(sizeof(StConn *) * (size_t)(n ? n : 1));
    if (!open) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (self->live[i]->opened >= 0)
            open[m++] = self->live[i];
    qsort(open, (size_t)m, sizeof(StConn *), st_opened_order);
    int failed = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        if (failed) { /* still free it */
            st_unlink(self, open[i]);
            st_conn_free(open[i]);
        } else if (st_finish(self, open[i], out) < 0) {
            failed = 1;
        }
    }
    PyMem_Free(open);
    if (failed)
        Py_CLEAR(out);
    return out;
}

static PyObject *streamtable_counters(StreamTableObject *self, PyObject *unused) {
    return Py_BuildValue("(LLL)", (long long)self->buffered, (long long)self->refused, (long long)self->cut);
}

static Py_ssize_t streamtable_len(StreamTableObject *self) { return self->nlive; }

static PyMethodDef streamtable_methods[] = {
    {"feed", (PyCFunction)streamtable_feed, METH_VARARGS, "Offer a batch's TCP rows; the connections that ended."},
    {"finish", (PyCFunction)streamtable_finish, METH_NOARGS, "The connections still open that sent data."},
    {"counters", (PyCFunction)streamtable_counters, METH_NOARGS, "(bytes buffered, segments refused, segments cut)"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods streamtable_seq = {.sq_length = (lenfunc)streamtable_len};

static PyTypeObject StreamTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wardwatch.inventory._accum.StreamTable",
    .tp_basicsize = sizeof(StreamTableObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "StreamTable(dissectors, stream_bytes, segments, total_bytes): the claimed TCP connections.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)streamtable_init,
    .tp_dealloc = (destructor)streamtable_dealloc,
    .tp_methods = streamtable_methods,
    .tp_as_sequence = &streamtable_seq,
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_accum", "Per-packet flow and sighting accumulators (see _accum.c).", -1, NULL,
};

PyMODINIT_FUNC PyInit__accum(void) {
    if (PyType_Ready(&FlowAccType) < 0 || PyType_Ready(&SightingsType) < 0 || PyType_Ready(&StreamHeadsType) < 0 ||
        PyType_Ready(&StreamTableType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    Py_INCREF(&FlowAccType);
    Py_INCREF(&SightingsType);
    Py_INCREF(&StreamHeadsType);
    Py_INCREF(&StreamTableType);
    if (PyModule_AddObject(m, "FlowAcc", (PyObject *)&FlowAccType) < 0 ||
        PyModule_AddObject(m, "Sightings", (PyObject *)&SightingsType) < 0 ||
        PyModule_AddObject(m, "StreamHeads", (PyObject *)&StreamHeadsType) < 0 ||
        PyModule_AddObject(m, "StreamTable", (PyObject *)&StreamTableType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
