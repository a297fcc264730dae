/*
 * wardwatch.capture._walk: the one serial step of reading a capture, in C.
 *
 * Walking record headers is inherently sequential (each record's length says where the next one starts);
 * in CPython it costs ~360 ns per record, more than everything else the vectorised path does. These two
 * functions only find record/block offsets; every field is still decoded with numpy, and the pure-Python
 * walkers in batch.py give the same answers (tests check both). The module is optional: when it cannot be
 * built (no C compiler), wardwatch uses the Python walkers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rd32(const unsigned char *p, int big) {
    if (big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | (uint32_t)p[0];
}

/*
 * walk_pcap(buf, pos, end, rec_len, limit, big_endian, max_records) -> (offsets: bytes, pos, status, caplen)
 *   offsets: native int64 offsets of complete records; pos: where walking stopped;
 *   status 0: stopped at an incomplete record or the end; 1: record at pos claims more than limit bytes
 *   (caplen says how many); 2: max_records reached.
 */
static PyObject *walk_pcap(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, end, rec_len, max_records;
    long long limit;
    int big;
    if (!PyArg_ParseTuple(args, "y*nnnLpn", &view, &pos, &end, &rec_len, &limit, &big, &max_records))
        return NULL;
    if (end > view.len || pos < 0 || rec_len < 12 || max_records < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "bad walk arguments");
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)view.buf;
    Py_ssize_t cap = max_records;
    PyObject *out = PyBytes_FromStringAndSize(NULL, cap * (Py_ssize_t)sizeof(int64_t));
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *offs = (int64_t *)PyBytes_AS_STRING(out);
    Py_ssize_t n = 0;
    int status = 0;
    long long caplen = 0;
    Py_BEGIN_ALLOW_THREADS
    while (pos + rec_len <= end) {
        if (n >= cap) {
            status = 2;
            break;
        }
        caplen = rd32(buf + pos + 8, big);
        if (caplen > limit) {
            status = 1;
            break;
        }
        Py_ssize_t nxt = pos + rec_len + (Py_ssize_t)caplen;
        if (nxt > end)
            break;
        offs[n++] = pos;
        pos = nxt;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&out, n * (Py_ssize_t)sizeof(int64_t)) < 0)
        return NULL;
    return Py_BuildValue("NniL", out, pos, status, caplen);
}

/*
 * walk_pcapng(buf, pos, end, big_endian, max_blocks) -> (offsets: bytes, types: bytes, pos, status)
 *   Walks consecutive blocks of EPB (6), SPB (3) or obsolete PB (2) type with a sane, trailer-checked length.
 *   Stops (status 0) at the first block of any other type, at an incomplete block or the end, or (status 1)
 *   at a block whose length or trailer is wrong: Python handles those exactly as the streaming reader does.
 *   status 2: max_blocks reached. types: one byte per block (its type).
 */
static PyObject *walk_pcapng(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, end, max_blocks;
    int big;
    if (!PyArg_ParseTuple(args, "y*nnpn", &view, &pos, &end, &big, &max_blocks))
        return NULL;
    if (end > view.len || pos < 0 || max_blocks < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "bad walk arguments");
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)view.buf;
    PyObject *out = PyBytes_FromStringAndSize(NULL, max_blocks * (Py_ssize_t)sizeof(int64_t));
    PyObject *types = PyBytes_FromStringAndSize(NULL, max_blocks);
    if (!out || !types) {
        Py_XDECREF(out);
        Py_XDECREF(types);
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t *offs = (int64_t *)PyBytes_AS_STRING(out);
    unsigned char *kinds = (unsigned char *)PyBytes_AS_STRING(types);
    Py_ssize_t n = 0;
    int status = 0;
    Py_BEGIN_ALLOW_THREADS
    while (pos + 8 <= end) {
        if (n >= max_blocks) {
            status = 2;
            break;
        }
        uint32_t btype = rd32(buf + pos, big);
        if (btype != 6 && btype != 3 && btype != 2)
            break;
        uint32_t blen = rd32(buf + pos + 4, big);
        if (blen < 12 || (blen & 3) || blen > 16u * 1024u * 1024u) {
            status = 1;
            break;
        }
        if (pos + (Py_ssize_t)blen > end)
            break;
        if (rd32(buf + pos + blen - 4, big) != blen) {
            status = 1;
            break;
        }
        offs[n] = pos;
        kinds[n] = (unsigned char)btype;
        n++;
        pos += blen;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (_PyBytes_Resize(&out, n * (Py_ssize_t)sizeof(int64_t)) < 0) {
        Py_DECREF(types);
        return NULL;
    }
    if (_PyBytes_Resize(&types, n) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return Py_BuildValue("NNni", out, types, pos, status);
}

/*
 * decode_fast(buf, start, caplen, linktype, smac, dmac, vlan, ethertype, ipver, src_hi, src_lo, dst_hi, dst_lo,
 *             ttl, proto, frag, sport, dport, tflags, tseq, slow, vlan_outer, icmp, pay_start, pay_end)
 *   -> number of rows decoded
 *
 * vlan_outer: the first VLAN id when two non-zero ones are stacked (else -1); icmp: type << 8 | code for
 * ICMP/ICMPv6 (else -1); pay_start/pay_end: the transport payload as the reference decoder slices it,
 * relative to the start of the record.
 *
 * For each record: Ethernet II with up to two 802.1Q/802.1ad tags carrying IPv4 (any options) or IPv6
 * without extension headers, whose transport header the reference decoder would accept (TCP 20 bytes with a
 * data offset of at least 5 words, UDP 8, ICMP/ICMPv6 4; other non-tunnel protocols: nothing), is decoded
 * into the output columns and gets slow = 0. Everything else is left untouched with slow = 1: the Python
 * reference decoder fills those rows. Every read is bounded by the record's captured length, and records
 * that do not lie inside the buffer are left to Python.
 */
static inline uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32(const unsigned char *p) { return rd32(p, 1); }
static inline uint64_t be64(const unsigned char *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }
static inline int is_tpid(uint16_t t) { return t == 0x8100 || t == 0x88A8 || t == 0x9100; }

#define NBUF 25
static PyObject *decode_fast(PyObject *self, PyObject *args) {
    Py_buffer b[NBUF];
    memset(b, 0, sizeof(b));
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*w*w*w*w*w*w*w*w*w*w*w*w*w*w*w*w*w*w*w*w*", &b[0], &b[1], &b[2], &b[3],
                          &b[4], &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11], &b[12], &b[13], &b[14], &b[15],
                          &b[16], &b[17], &b[18], &b[19], &b[20], &b[21], &b[22], &b[23], &b[24]))
        return NULL;
    Py_ssize_t n = b[1].len / (Py_ssize_t)sizeof(int64_t);
    /* element sizes of the columns, in argument order */
    static const Py_ssize_t sizes[NBUF] = {1, 8, 8, 4, 8, 8, 4, 4, 1, 8, 8, 8, 8, 4, 4, 1, 4, 4, 1, 8, 1, 4, 4, 4, 4};
    for (int k = 1; k < NBUF; k++) {
        if (b[k].len != n * sizes[k]) {
            for (int j = 0; j < NBUF; j++)
                PyBuffer_Release(&b[j]);
            PyErr_Format(PyExc_ValueError, "decode_fast: column %d has the wrong size", k);
            return NULL;
        }
    }
    const unsigned char *buf = (const unsigned char *)b[0].buf;
    const Py_ssize_t buflen = b[0].len;
    const int64_t *start = (const int64_t *)b[1].buf;
    const int64_t *caplen = (const int64_t *)b[2].buf;
    const int32_t *linktype = (const int32_t *)b[3].buf;
    uint64_t *smac = (uint64_t *)b[4].buf, *dmac = (uint64_t *)b[5].buf;
    int32_t *vlan = (int32_t *)b[6].buf, *ethertype = (int32_t *)b[7].buf;
    uint8_t *ipver = (uint8_t *)b[8].buf;
    uint64_t *src_hi = (uint64_t *)b[9].buf, *src_lo = (uint64_t *)b[10].buf;
    uint64_t *dst_hi = (uint64_t *)b[11].buf, *dst_lo = (uint64_t *)b[12].buf;
    int32_t *ttl = (int32_t *)b[13].buf, *proto_out = (int32_t *)b[14].buf;
    uint8_t *frag = (uint8_t *)b[15].buf;
    int32_t *sport = (int32_t *)b[16].buf, *dport = (int32_t *)b[17].buf;
    uint8_t *tflags = (uint8_t *)b[18].buf;
    int64_t *tseq = (int64_t *)b[19].buf;
    uint8_t *slow = (uint8_t *)b[20].buf;
    int32_t *vlan_outer = (int32_t *)b[21].buf, *icmp = (int32_t *)b[22].buf;
    int32_t *pay_start = (int32_t *)b[23].buf, *pay_end = (int32_t *)b[24].buf;
    Py_ssize_t decoded = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        slow[i] = 1;
        const int64_t cap = caplen[i];
        if (linktype[i] != 1 || cap < 14 || start[i] < 0 || start[i] + cap > buflen)
            continue;
        const unsigned char *d = buf + start[i];
        int64_t l3 = 14;
        uint16_t et = be16(d + 12);
        int32_t v = -1, vo = -1;
        int tags = 0;
        while (is_tpid(et)) {
            if (tags == 2 || cap < l3 + 4)
                break;
            uint16_t vid = be16(d + l3) & 0x0FFF;
            if (vid) {
                vo = v;
                v = vid;
            }
            et = be16(d + l3 + 2);
            l3 += 4;
            tags++;
        }
        if (is_tpid(et))
            continue; /* a third tag, or a cut tag: the reference decoder handles it */
        int64_t l4, avail, hl;
        int p, later = 0, first = 0, ver, hop;
        uint64_t shi = 0, slo, dhi = 0, dlo;
        if (et == 0x0800) {
            if (cap < l3 + 20)
                continue;
            const unsigned char *ip = d + l3;
            if ((ip[0] >> 4) != 4)
                continue;
            hl = (int64_t)(ip[0] & 0x0F) * 4;
            if (hl < 20 || cap < l3 + hl)
                continue;
            p = ip[9];
            if (p == 4 || p == 41 || p == 47)
                continue;
            int64_t total = be16(ip + 2);
            uint16_t fw = be16(ip + 6);
            later = (fw & 0x1FFF) != 0;
            first = !later && (fw & 0x2000);
            int64_t end = total >= hl ? l3 + total : cap;
            avail = cap < end ? cap : end;
            l4 = l3 + hl;
            slo = be32(ip + 12);
            dlo = be32(ip + 16);
            hop = ip[8];
            ver = 4;
        } else if (et == 0x86DD) {
            if (cap < l3 + 40)
                continue;
            const unsigned char *ip = d + l3;
            if ((ip[0] >> 4) != 6)
                continue;
            p = ip[6];
            if (p == 0 || p == 43 || p == 44 || p == 51 || p == 60 || p == 135 || p == 139 || p == 140 || p == 4 ||
                p == 41 || p == 47)
                continue;
            int64_t plen = be16(ip + 4);
            int64_t end = plen > 0 ? l3 + 40 + plen : cap;
            avail = cap < end ? cap : end;
            l4 = l3 + 40;
            shi = be64(ip + 8);
            slo = be64(ip + 16);
            dhi = be64(ip + 24);
            dlo = be64(ip + 32);
            hop = ip[7];
            ver = 6;
        } else {
            continue;
        }
        int32_t sp = -1, dp = -1, ic = -1;
        uint8_t fl = 0;
        int64_t seq = -1;
        int64_t ps = l4, pe = avail; /* payload, as the reference decoder slices it */
        if (!later) {
            int64_t need = p == 6 ? 20 : p == 17 ? 8 : (p == 1 || p == 58) ? 4 : 0;
            if (avail < l4 + need)
                continue;
            const unsigned char *t = d + l4;
            if (p == 6 || p == 17) {
                sp = be16(t);
                dp = be16(t + 2);
                if (p == 6) {
                    if ((t[12] >> 4) < 5)
                        continue;
                    seq = be32(t + 4);
                    fl = t[13];
                    ps = l4 + (int64_t)(t[12] >> 4) * 4;
                } else {
                    int64_t ulen = be16(t + 4);
                    ps = l4 + 8;
                    if (ulen >= 8 && l4 + ulen < pe)
                        pe = l4 + ulen;
                }
            } else if (p == 1 || p == 58) {
                ic = (t[0] << 8) | t[1];
                ps = l4 + 4;
            }
        }
        if (ps > pe)
            ps = pe;
        smac[i] = ((uint64_t)be32(d + 6) << 16) | be16(d + 10);
        dmac[i] = ((uint64_t)be32(d) << 16) | be16(d + 4);
        vlan[i] = v;
        ethertype[i] = et;
        ipver[i] = (uint8_t)ver;
        src_hi[i] = shi;
        src_lo[i] = slo;
        dst_hi[i] = dhi;
        dst_lo[i] = dlo;
        ttl[i] = hop;
        proto_out[i] = p;
        frag[i] = later ? 2 : first ? 1 : 0;
        sport[i] = sp;
        dport[i] = dp;
        tflags[i] = fl;
        tseq[i] = seq;
        vlan_outer[i] = vo;
        icmp[i] = ic;
        pay_start[i] = (int32_t)ps;
        pay_end[i] = (int32_t)pe;
        slow[i] = 0;
        decoded++;
    }
    Py_END_ALLOW_THREADS
    for (int j = 0; j < NBUF; j++)
        PyBuffer_Release(&b[j]);
    return PyLong_FromSsize_t(decoded);
}


/*
 * take_tpacket3(ring, base, block_size, ether, guard) -> (buf: bytearray, rows: bytes, outgoing: int)
 *   One TPACKET_V3 block of a packet ring (linux/if_packet.h: tpacket_block_desc, tpacket3_hdr, then
 *   sockaddr_ll at TPACKET_ALIGN(sizeof(tpacket3_hdr)) = 48) at ring[base:], copied out: buf holds the block,
 *   guard zero bytes, then a copy of each frame whose VLAN tag the kernel moved into its header with the tag put
 *   back after the MAC addresses, then guard bytes. rows: native int64 (start in buf, caplen, wirelen, ts_ns) per
 *   frame kept; frames this host sent (sll_pkttype PACKET_OUTGOING) are only counted. A frame header past the
 *   block's end ends the walk (a damaged block keeps what came before). Same result as LiveCapture's Python walk.
 */
static PyObject *take_tpacket3(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t base, bsize, guard;
    int ether;
    if (!PyArg_ParseTuple(args, "y*nnpn", &view, &base, &bsize, &ether, &guard))
        return NULL;
    if (base < 0 || bsize < 64 || base + bsize > view.len || guard < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "bad block arguments");
        return NULL;
    }
    const unsigned char *blk = (const unsigned char *)view.buf + base;
    uint32_t count = rd32(blk + 12, 0), first = rd32(blk + 16, 0), length = rd32(blk + 20, 0);
    if (length < first)
        length = first;
    if (length > (uint32_t)bsize)
        length = (uint32_t)bsize;
    int64_t *rows = count ? (int64_t *)PyMem_RawMalloc((size_t)count * 6 * sizeof(int64_t)) : NULL;
    if (count && rows == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    Py_ssize_t n = 0, outgoing = 0, extra = 0;
    uint32_t at = first;
    Py_BEGIN_ALLOW_THREADS  /* the walk and the copies touch no Python object: the monitor runs meanwhile */
    for (uint32_t k = 0; k < count; k++) {
        if ((uint64_t)at + 48 + 10 >= length)
            break;
        const unsigned char *h = blk + at;
        uint32_t nxt = rd32(h, 0), sec = rd32(h + 4, 0), nsec = rd32(h + 8, 0), snap = rd32(h + 12, 0);
        uint32_t wire = rd32(h + 16, 0), status = rd32(h + 20, 0);
        uint32_t mac = (uint32_t)h[24] | ((uint32_t)h[25] << 8);
        if (h[48 + 10] == 4) {
            outgoing++;
        } else {
            uint64_t frame = (uint64_t)at + mac;
            if (frame > length)
                frame = length;
            if (snap > length - frame)
                snap = (uint32_t)(length - frame);
            int tagged = (status & (1u << 4)) && ether && snap >= 12;
            int64_t *r = rows + n * 6;
            r[0] = (int64_t)frame;
            r[1] = snap + (tagged ? 4 : 0);
            r[2] = (int64_t)wire + (tagged ? 4 : 0);
            r[3] = (int64_t)sec * 1000000000LL + nsec;
            r[4] = tagged;
            r[5] = tagged ? (int64_t)(((status & (1u << 6)) && (h[36] | (h[37] << 8)) ? (h[36] | (h[37] << 8)) : 0x8100) << 16 |
                                      ((uint32_t)h[32] | ((uint32_t)h[33] << 8)))
                          : 0;
            if (tagged)
                extra += snap + 4;
            n++;
        }
        if (!nxt)
            break;
        at += nxt;
    }
    Py_END_ALLOW_THREADS
    Py_ssize_t head = (Py_ssize_t)length + guard;
    Py_ssize_t total = head + (extra ? extra + guard : 0);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, total);
    PyObject *packed = PyBytes_FromStringAndSize(NULL, n * 4 * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL || packed == NULL) {
        Py_XDECREF(out);
        Py_XDECREF(packed);
        PyMem_RawFree(rows);
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyByteArray_AS_STRING(out);
    int64_t *p = (int64_t *)PyBytes_AS_STRING(packed);
    Py_BEGIN_ALLOW_THREADS
    memcpy(o, blk, length);
    memset(o + length, 0, (size_t)(total - length));
    Py_ssize_t put = head;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t *r = rows + i * 6;
        int64_t start = r[0];
        if (r[4]) {
            int64_t snap = r[1] - 4;
            uint32_t tag = (uint32_t)r[5];
            memcpy(o + put, o + start, 12);
            o[put + 12] = (unsigned char)(tag >> 24);
            o[put + 13] = (unsigned char)(tag >> 16);
            o[put + 14] = (unsigned char)(tag >> 8);
            o[put + 15] = (unsigned char)tag;
            memcpy(o + put + 16, o + start + 12, (size_t)(snap - 12));
            start = put;
            put += snap + 4;
        }
        p[i * 4] = start;
        p[i * 4 + 1] = r[1];
        p[i * 4 + 2] = r[2];
        p[i * 4 + 3] = r[3];
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(rows);
    PyBuffer_Release(&view);
    return Py_BuildValue("NNn", out, packed, outgoing);
}

static PyMethodDef methods[] = {
    {"decode_fast", decode_fast, METH_VARARGS, "Decode common Ethernet/IP headers into columns (see _walk.c)."},
    {"walk_pcap", walk_pcap, METH_VARARGS, "Offsets of complete pcap records (see _walk.c)."},
    {"walk_pcapng", walk_pcapng, METH_VARARGS, "Offsets of consecutive pcapng packet blocks (see _walk.c)."},
    {"take_tpacket3", take_tpacket3, METH_VARARGS, "One TPACKET_V3 ring block copied out as frames (see _walk.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", "Record walkers in C.", -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
