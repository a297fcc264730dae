/*
 * wardwatch.dissect._dnswire: the DNS message layout (RFC 1035 section 4.1) parsed in C.
 *
 * Name decompression is the costly part of reading DNS, mDNS and NBNS answers in Python (~10 us a message).
 * These functions do exactly what dissect/wire.py's read_name and dissect/dns.py's parse_message do - the same
 * names, positions, limits and error messages (the Python versions stay as the reference; tests compare the
 * two on real and on random messages). They parse the wire format only; what the records mean is decided in
 * Python. The module is optional: without a C compiler the Python functions run.
 *
 * Errors are raised as ValueError with the reference's message; the Python wrapper turns them into
 * MalformedPacket.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

#define MAX_LABELS 128  /* wire.MAX_LABELS */
#define MAX_RECORDS 512 /* dns.MAX_RECORDS */

typedef struct {
    int32_t off, len; /* a label: its bytes in the message */
} Label;

/* One message's name state: the labels read so far (an arena) and, per offset, the labels of the name
 * starting there (the reference's NameCache); cache_start[pos] < 0 means unknown. */
typedef struct {
    Label *arena;
    Py_ssize_t used, cap;
    int32_t *cache_start, *cache_count;
} Names;

static int names_push(Names *n, int32_t off, int32_t len) {
    if (n->used == n->cap) {
        Py_ssize_t cap = n->cap ? n->cap * 2 : 256;
        Label *grown = (Label *)realloc(n->arena, (size_t)cap * sizeof(Label));
        if (!grown) {
            PyErr_NoMemory();
            return -1;
        }
        n->arena = grown;
        n->cap = cap;
    }
    n->arena[n->used].off = off;
    n->arena[n->used].len = len;
    n->used++;
    return 0;
}

static PyObject *fail(const char *message) {
    PyErr_SetString(PyExc_ValueError, message);
    return NULL;
}

/* The dotted text of labels [first, first + count) of the arena, escaped as wire.label_text does. */
static PyObject *name_text(const unsigned char *data, const Label *labels, Py_ssize_t count) {
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        size += (Py_ssize_t)labels[i].len * 4 + 1; /* worst case: every byte as \DDD */
    char stack[512];
    char *out = size <= (Py_ssize_t)sizeof(stack) ? stack : (char *)malloc((size_t)size);
    if (!out)
        return PyErr_NoMemory();
    Py_ssize_t w = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i)
            out[w++] = '.';
        const unsigned char *p = data + labels[i].off;
        for (int32_t k = 0; k < labels[i].len; k++) {
            unsigned char b = p[k];
            if (b == 0x2E || b == 0x5C) {
                out[w++] = '\\';
                out[w++] = (char)b;
            } else if (b >= 0x21 && b <= 0x7E) {
                out[w++] = (char)b;
            } else {
                out[w++] = '\\';
                out[w++] = (char)('0' + b / 100);
                out[w++] = (char)('0' + (b / 10) % 10);
                out[w++] = (char)('0' + b % 10);
            }
        }
    }
    PyObject *text = PyUnicode_DecodeASCII(out, w, NULL);
    if (out != stack)
        free(out);
    return text;
}

/*
 * read_name as in wire.py: the name at *pos (its labels appended to the arena from *first on), *pos moved past
 * the name in place. With a cache (n->cache_start != NULL), a pointer to an offset whose name is known takes its
 * labels, and every offset visited is remembered. Returns the name's text, or NULL with ValueError set.
 */
static PyObject *read_name(const unsigned char *data, Py_ssize_t size, Py_ssize_t *pos_io, Names *n) {
    Py_ssize_t first = n->used;
    Py_ssize_t pos = *pos_io, end = -1;
    int jumps = 0;
    /* offsets visited and the labels read before each (the reference's marks) */
    int32_t mark_at[2 * MAX_LABELS + 4], mark_before[2 * MAX_LABELS + 4];
    int marks = 0;
    int cached = n->cache_start != NULL;
    for (;;) {
        if (cached) {
            if (end >= 0 && pos < size && n->cache_start[pos] >= 0) {
                int32_t start = n->cache_start[pos], count = n->cache_count[pos];
                for (int32_t k = 0; k < count; k++) {
                    /* the arena may move while growing: index, never hold a pointer */
                    Label l = n->arena[start + k];
                    if (names_push(n, l.off, l.len) < 0)
                        return NULL;
                }
                if (n->used - first > MAX_LABELS)
                    return fail("DNS name has too many labels");
                break;
            }
            /* every step below either fails or counts towards a limit: marks stay within the array */
            mark_at[marks] = (int32_t)pos;
            mark_before[marks] = (int32_t)(n->used - first);
            marks++;
        }
        if (pos >= size)
            return fail("DNS name runs past the end of the message");
        unsigned char length = data[pos];
        if (length >= 0xC0) {
            if (pos + 1 >= size)
                return fail("DNS compression pointer cut short");
            if (end < 0)
                end = pos + 2;
            Py_ssize_t target = ((Py_ssize_t)(length & 0x3F) << 8) | data[pos + 1];
            jumps++;
            if (jumps > MAX_LABELS || target >= size)
                return fail("DNS compression pointer loop or out of range");
            pos = target;
            continue;
        }
        if (length & 0xC0) {
            PyErr_Format(PyExc_ValueError, "unsupported DNS label type 0x%02x", (unsigned)length);
            return NULL;
        }
        pos += 1;
        if (length == 0)
            break;
        if (pos + length > size)
            return fail("DNS label runs past the end of the message");
        if (names_push(n, (int32_t)pos, length) < 0)
            return NULL;
        pos += length;
        if (n->used - first > MAX_LABELS)
            return fail("DNS name has too many labels");
    }
    if (cached) {
        Py_ssize_t count = n->used - first;
        for (int i = 0; i < marks; i++) {
            n->cache_start[mark_at[i]] = (int32_t)(first + mark_before[i]);
            n->cache_count[mark_at[i]] = (int32_t)(count - mark_before[i]);
        }
    }
    *pos_io = end >= 0 ? end : pos;
    return name_text(data, n->arena + first, n->used - first);
}

static unsigned be16(const unsigned char *p) { return ((unsigned)p[0] << 8) | p[1]; }

/* read_name(data, pos) -> (name, end): one name, no cache (wire.read_name without a cache). */
static PyObject *py_read_name(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "y*n", &view, &pos))
        return NULL;
    PyObject *out = NULL;
    Names n = {0};
    if (pos < 0) {
        PyErr_SetString(PyExc_ValueError, "DNS name runs past the end of the message");
    } else {
        PyObject *name = read_name((const unsigned char *)view.buf, view.len, &pos, &n);
        if (name) {
            out = Py_BuildValue("(Nn)", name, pos);
        }
    }
    free(n.arena);
    PyBuffer_Release(&view);
    return out;
}

/*
 * parse_message(data) -> (ident, flags, questions: tuple[str], records: list[(name, rtype, rclass, pos, rdlen)])
 * as dns.parse_message (rclass with the mDNS cache-flush bit masked).
 */
static PyObject *py_parse_message(PyObject *self, PyObject *args) {
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view))
        return NULL;
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t size = view.len;
    PyObject *questions = NULL, *records = NULL, *out = NULL;
    Names n = {0};
    if (size < 12) {
        fail("DNS message shorter than its header");
        goto done;
    }
    unsigned ident = be16(data), flags = be16(data + 2);
    long qd = be16(data + 4), an = be16(data + 6), ns = be16(data + 8), ar = be16(data + 10);
    if (qd + an + ns + ar > MAX_RECORDS) {
        PyErr_Format(PyExc_ValueError, "DNS message claims %ld entries", qd + an + ns + ar);
        goto done;
    }
    n.cache_start = (int32_t *)malloc((size_t)size * sizeof(int32_t));
    n.cache_count = (int32_t *)malloc((size_t)size * sizeof(int32_t));
    if (!n.cache_start || !n.cache_count) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < size; i++)
        n.cache_start[i] = -1;
    questions = PyTuple_New(qd);
    records = PyList_New(an + ns + ar);
    if (!questions || !records)
        goto done;
    Py_ssize_t pos = 12;
    for (long i = 0; i < qd; i++) {
        PyObject *name = read_name(data, size, &pos, &n);
        if (!name)
            goto done;
        PyTuple_SET_ITEM(questions, i, name);
        if (pos + 4 > size) {
            fail("DNS question cut short");
            goto done;
        }
        pos += 4;
    }
    for (long i = 0; i < an + ns + ar; i++) {
        PyObject *name = read_name(data, size, &pos, &n);
        if (!name)
            goto done;
        if (pos + 10 > size) {
            Py_DECREF(name);
            fail("DNS record header cut short");
            goto done;
        }
        unsigned rtype = be16(data + pos), rclass = be16(data + pos + 2), rdlen = be16(data + pos + 8);
        pos += 10;
        if (pos + (Py_ssize_t)rdlen > size) {
            Py_DECREF(name);
            fail("DNS record data cut short");
            goto done;
        }
        PyObject *rec = Py_BuildValue("(NIInI)", name, rtype, rclass & 0x7FFF, pos, rdlen);
        if (!rec)
            goto done;
        PyList_SET_ITEM(records, i, rec);
        pos += rdlen;
    }
    out = Py_BuildValue("(IIOO)", ident, flags, questions, records);
done:
    Py_XDECREF(questions);
    Py_XDECREF(records);
    free(n.arena);
    free(n.cache_start);
    free(n.cache_count);
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"read_name", py_read_name, METH_VARARGS, "A possibly compressed DNS name at pos: (name, end) (see wire.py)."},
    {"parse_message", py_parse_message, METH_VARARGS, "A DNS message's header, questions and records (see dns.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dnswire", "The DNS wire format in C.", -1, methods};

PyMODINIT_FUNC PyInit__dnswire(void) { return PyModule_Create(&module); }
