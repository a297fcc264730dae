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

static PyMethodDef methods[] = {
    {"walk_pcap", walk_pcap, METH_VARARGS, "Offsets of complete pcap records (see _walk.c)."},
    {"walk_pcapng", walk_pcapng, METH_VARARGS, "Offsets of consecutive pcapng packet blocks (see _walk.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", "Record walkers in C.", -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
