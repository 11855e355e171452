/*
 * The native BER fast path: runs a plan (a description compiled to nested
 * tuples by migcompat.codec.native) over a state or over bytes.
 *
 * Why: the generated Python codecs reach the pure-Python limit per TLV; the
 * same plan interpreted in C does the type checks, range checks and TLV
 * framing without a Python call per member.
 *
 * Contract, the same as the generated Python fast path: it never reports an
 * error of its own. On anything it does not handle exactly -- a value of an
 * unexpected type or range, a length or count that disagrees, a form of BER
 * our encoder does not write (indefinite or non-short integer lengths,
 * constructed strings, a BOOLEAN other than 00/FF, a non-minimal INTEGER),
 * a needed subsection, a signature it does not expect, a failed check --
 * it returns None and the Python paths decide, so every error is the generic
 * path's. Only MemoryError propagates.
 *
 * Bounds: every declared length is checked against the bytes present before
 * anything is read or allocated; lists grow one element at a time up to the
 * plan's element limit; recursion follows the plan, whose depth the
 * description bounds (limits.MAX_DEPTH).
 *
 * Plan layout (positions in the tuples; see codec/native.py):
 *   op      = (OP_INT, bits, signed) | (OP_BOOL,) | (OP_BUF, size, ref, scale)
 *           | (OP_STR,) | (OP_STRUCT, struct)
 *           | (OP_LIST, element, code_tlv, length, ref, scale, max_length, max_elements)
 *   struct  = (names, ops, defaults, whens, signatures, is_description, subsections, validate)
 *     ops[i] None: the field is absent at this version (decode: its default)
 *     defaults[i] = (is_factory, object)
 *     whens[i] None or (sibling index, value, bit)
 *     signatures[mask]: the signature TLV for the value-gated fields present
 *     subsections[k] = (subsection, name, name_tlv, entry_signature, version_tlv, plan, critical_tlv): in the
 *       description's order; encode writes those whose subsection.is_needed(state), decode
 *       reads entries of these names at the subsection's own version
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum { OP_INT = 0, OP_BOOL, OP_BUF, OP_STR, OP_STRUCT, OP_LIST };

/* Results of the workers: OK, GIVE_UP (return None), or ERROR (exception set). */
#define OK 0
#define GIVE_UP 1
#define ERROR (-1)

/* Struct plan tuple positions. */
enum { S_NAMES, S_OPS, S_DEFAULTS, S_WHENS, S_SIGNATURES, S_IS_DESCRIPTION, S_SUBSECTIONS, S_VALIDATE };

#define MAX_FIELDS 4096
#define SEQUENCE 0x30

static const char EMPTY_LIST[4] = {0x30, 0x02, 0x0c, 0x00};
static const char STRUCT_CODE[8] = {0x0c, 0x06, 's', 't', 'r', 'u', 'c', 't'};

/* Subsection entry tuple positions. */
enum { SUB_OBJECT, SUB_NAME, SUB_NAME_TLV, SUB_SIGNATURE, SUB_VERSION_TLV, SUB_PLAN, SUB_CRITICAL_TLV };

/* ------------------------------------------------------------------ output */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Out;

static int out_reserve(Out *out, Py_ssize_t extra)
{
    if (out->len + extra <= out->cap)
        return OK;
    Py_ssize_t cap = out->cap ? out->cap : 1024;
    while (cap < out->len + extra)
        cap *= 2;
    char *data = PyMem_Realloc(out->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return ERROR;
    }
    out->data = data;
    out->cap = cap;
    return OK;
}

static int out_put(Out *out, const char *bytes, Py_ssize_t size)
{
    if (out_reserve(out, size) != OK)
        return ERROR;
    memcpy(out->data + out->len, bytes, (size_t)size);
    out->len += size;
    return OK;
}

static Py_ssize_t length_octets(Py_ssize_t length, unsigned char *into)
{
    if (length < 0x80) {
        into[0] = (unsigned char)length;
        return 1;
    }
    int count = 0;
    for (Py_ssize_t rest = length; rest; rest >>= 8)
        count++;
    into[0] = (unsigned char)(0x80 | count);
    for (int i = 0; i < count; i++)
        into[1 + i] = (unsigned char)(length >> (8 * (count - 1 - i)));
    return 1 + count;
}

static int out_header(Out *out, unsigned char tag, Py_ssize_t length)
{
    unsigned char head[10];
    head[0] = tag;
    Py_ssize_t size = 1 + length_octets(length, head + 1);
    return out_put(out, (const char *)head, size);
}

/* A constructed value is written after a reserved header, then moved up to its real header. */
#define RESERVED 10

static int out_open(Out *out, Py_ssize_t *at)
{
    if (out_reserve(out, RESERVED) != OK)
        return ERROR;
    *at = out->len;
    out->len += RESERVED;
    return OK;
}

static void out_close(Out *out, Py_ssize_t at)
{
    Py_ssize_t content = out->len - at - RESERVED;
    unsigned char head[RESERVED];
    head[0] = SEQUENCE;
    Py_ssize_t size = 1 + length_octets(content, head + 1);
    memmove(out->data + at + size, out->data + at + RESERVED, (size_t)content);
    memcpy(out->data + at, head, (size_t)size);
    out->len = at + size + content;
}

/* ---------------------------------------------------------------- integers */

static int integer_value(PyObject *value, int bits, int is_signed, unsigned long long *raw, int *negative)
{
    if (!PyLong_CheckExact(value))
        return GIVE_UP;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return GIVE_UP;
    }
    if (overflow) {
        if (is_signed || bits < 64 || overflow < 0)
            return GIVE_UP;
        unsigned long long u = PyLong_AsUnsignedLongLong(value);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return GIVE_UP;
        }
        *raw = u;
        *negative = 0;
        return OK;
    }
    if (is_signed) {
        if (bits < 64) {
            long long lo = -(1LL << (bits - 1)), hi = (1LL << (bits - 1)) - 1;
            if (v < lo || v > hi)
                return GIVE_UP;
        }
    } else {
        if (v < 0)
            return GIVE_UP;
        if (bits < 64 && (unsigned long long)v >= (1ULL << bits))
            return GIVE_UP;
    }
    *raw = (unsigned long long)v;
    *negative = v < 0;
    return OK;
}

static int bit_length(unsigned long long v)
{
    int n = 0;
    while (v) {
        n++;
        v >>= 1;
    }
    return n;
}

static int put_integer(Out *out, unsigned long long raw, int negative)
{
    /* Minimal two's complement, as Python's (bit_length >> 3) + 1 octets. */
    int size = (bit_length(negative ? ~raw : raw) >> 3) + 1;
    if (out_reserve(out, 2 + size) != OK)
        return ERROR;
    unsigned char *p = (unsigned char *)out->data + out->len;
    p[0] = 0x02;
    p[1] = (unsigned char)size;
    for (int i = 0; i < size; i++) {
        int shift = 8 * (size - 1 - i);
        p[2 + i] = shift >= 64 ? (negative ? 0xff : 0x00) : (unsigned char)(raw >> shift);
    }
    out->len += 2 + size;
    return OK;
}

/* ------------------------------------------------------------------ encode */

static int encode_struct(PyObject *plan, PyObject *state, Out *out);
static int encode_value(PyObject *op, PyObject *value, PyObject **siblings, Out *out);

static long op_code(PyObject *op) { return PyLong_AsLong(PyTuple_GET_ITEM(op, 0)); }
static long op_long(PyObject *op, Py_ssize_t i) { return PyLong_AsLong(PyTuple_GET_ITEM(op, i)); }

/* A length held by a sibling (times its scale): -1 when it is not a usable count. */
static Py_ssize_t held_length(PyObject **siblings, long ref, long scale)
{
    PyObject *held = siblings[ref];
    if (held == NULL || !PyLong_CheckExact(held))
        return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(held, &overflow);
    if (overflow || v < 0 || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return -1;
    }
    if (scale > 0 && v > PY_SSIZE_T_MAX / scale)
        return -1;
    return (Py_ssize_t)(v * scale);
}

static int encode_value(PyObject *op, PyObject *value, PyObject **siblings, Out *out)
{
    switch (op_code(op)) {
    case OP_INT: {
        unsigned long long raw;
        int negative, status = integer_value(value, (int)op_long(op, 1), (int)op_long(op, 2), &raw, &negative);
        return status != OK ? status : put_integer(out, raw, negative);
    }
    case OP_BOOL:
        if (!PyBool_Check(value))
            return GIVE_UP;
        return out_put(out, value == Py_True ? "\x01\x01\xff" : "\x01\x01\x00", 3);
    case OP_BUF: {
        char *bytes;
        Py_ssize_t size;
        if (PyBytes_CheckExact(value)) {
            bytes = PyBytes_AS_STRING(value);
            size = PyBytes_GET_SIZE(value);
        } else if (PyByteArray_CheckExact(value)) {
            bytes = PyByteArray_AS_STRING(value);
            size = PyByteArray_GET_SIZE(value);
        } else
            return GIVE_UP;
        long fixed = op_long(op, 1), ref = op_long(op, 2);
        Py_ssize_t expected = ref >= 0 ? held_length(siblings, ref, op_long(op, 3)) : fixed;
        if (expected < 0 || size != expected)
            return GIVE_UP;
        if (out_header(out, 0x04, size) != OK)
            return ERROR;
        return out_put(out, bytes, size);
    }
    case OP_STR: {
        if (!PyUnicode_CheckExact(value))
            return GIVE_UP;
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(value, &size);
        if (text == NULL) {
            PyErr_Clear();
            return GIVE_UP;
        }
        if (out_header(out, 0x0c, size) != OK)
            return ERROR;
        return out_put(out, text, size);
    }
    case OP_STRUCT:
        return encode_struct(PyTuple_GET_ITEM(op, 1), value, out);
    case OP_LIST: {
        if (!PyList_CheckExact(value) && !PyTuple_CheckExact(value))
            return GIVE_UP;
        Py_ssize_t count = PySequence_Fast_GET_SIZE(value);
        long fixed = op_long(op, 3), ref = op_long(op, 4);
        if (ref >= 0) {
            Py_ssize_t expected = held_length(siblings, ref, op_long(op, 5));
            if (expected < 0 || expected != count)
                return GIVE_UP;
        } else if (fixed >= 0 && fixed != count)
            return GIVE_UP;
        if (count == 0)
            return out_put(out, EMPTY_LIST, 4);
        PyObject *element = PyTuple_GET_ITEM(op, 1), *code = PyTuple_GET_ITEM(op, 2);
        Py_ssize_t at;
        if (out_open(out, &at) != OK || out_put(out, PyBytes_AS_STRING(code), PyBytes_GET_SIZE(code)) != OK)
            return ERROR;
        for (Py_ssize_t i = 0; i < count; i++) {
            /* A value of the list may drop the last reference to the list itself. */
            PyObject *item = PySequence_Fast_GET_ITEM(value, i);
            Py_INCREF(item);
            int status = encode_value(element, item, siblings, out);
            Py_DECREF(item);
            if (status != OK)
                return status;
            if (count != PySequence_Fast_GET_SIZE(value))
                return GIVE_UP;
        }
        out_close(out, at);
        return OK;
    }
    }
    return GIVE_UP;
}

/* A field's default: a shared immutable value, or one its factory builds afresh. */
static int default_of(PyObject *pair, PyObject **into)
{
    if (PyTuple_GET_ITEM(pair, 0) == Py_True) {
        *into = PyObject_CallNoArgs(PyTuple_GET_ITEM(pair, 1));
        if (*into == NULL) {
            PyErr_Clear();
            return GIVE_UP;
        }
        return OK;
    }
    *into = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
    return OK;
}

/* The values a struct's fields have while it is walked: present ones from the
 * state, absent ones their defaults (what the walker's ``out`` holds). */
static int struct_values(PyObject *plan, PyObject *state, PyObject **values, int *present, int *mask)
{
    PyObject *names = PyTuple_GET_ITEM(plan, S_NAMES), *ops = PyTuple_GET_ITEM(plan, S_OPS);
    PyObject *defaults = PyTuple_GET_ITEM(plan, S_DEFAULTS), *whens = PyTuple_GET_ITEM(plan, S_WHENS);
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    *mask = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *when = PyTuple_GET_ITEM(whens, i);
        present[i] = PyTuple_GET_ITEM(ops, i) != Py_None;
        if (present[i] && when != Py_None) {
            PyObject *sibling = values[PyLong_AsLong(PyTuple_GET_ITEM(when, 0))];
            int equal = PyObject_RichCompareBool(sibling, PyTuple_GET_ITEM(when, 1), Py_EQ);
            if (equal < 0) {
                PyErr_Clear();
                return GIVE_UP;
            }
            present[i] = equal;
            if (equal)
                *mask |= 1 << PyLong_AsLong(PyTuple_GET_ITEM(when, 2));
        }
        if (present[i]) {
            PyObject *value = PyDict_GetItemWithError(state, PyTuple_GET_ITEM(names, i));
            if (value == NULL) {
                PyErr_Clear();
                return GIVE_UP;
            }
            Py_INCREF(value);
            values[i] = value;
        } else if (default_of(PyTuple_GET_ITEM(defaults, i), &values[i]) != OK)
            return GIVE_UP;
    }
    return OK;
}

/* A struct's per-field values (new references) and presence while it is walked:
 * on the stack for most structs, on the heap for large ones. */
#define STACK_FIELDS 64

typedef struct {
    PyObject *stack_values[STACK_FIELDS];
    int stack_present[STACK_FIELDS];
    PyObject **values;
    int *present;
    Py_ssize_t n;
} Slots;

static int slots_open(Slots *slots, Py_ssize_t n)
{
    if (n > MAX_FIELDS)
        return GIVE_UP;
    slots->n = n;
    if (n <= STACK_FIELDS) {
        slots->values = slots->stack_values;
        slots->present = slots->stack_present;
    } else {
        slots->values = PyMem_Calloc((size_t)n, sizeof(PyObject *));
        slots->present = PyMem_Calloc((size_t)n, sizeof(int));
        if (slots->values == NULL || slots->present == NULL) {
            PyMem_Free(slots->values);
            PyMem_Free(slots->present);
            PyErr_NoMemory();
            return ERROR;
        }
    }
    memset(slots->values, 0, (size_t)n * sizeof(PyObject *));
    return OK;
}

static void slots_close(Slots *slots)
{
    for (Py_ssize_t i = 0; i < slots->n; i++)
        Py_XDECREF(slots->values[i]);
    if (slots->values != slots->stack_values) {
        PyMem_Free(slots->values);
        PyMem_Free(slots->present);
    }
}

static int put_bytes(Out *out, PyObject *bytes)
{
    return out_put(out, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
}

/* The subsection list of a description: an entry per needed subsection, as the walker writes it. */
static int encode_subsections(PyObject *plan, PyObject *state, Out *out)
{
    PyObject *subsections = PyTuple_GET_ITEM(plan, S_SUBSECTIONS);
    Py_ssize_t at = -1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(subsections); i++) {
        PyObject *sub = PyTuple_GET_ITEM(subsections, i);
        PyObject *needed = PyObject_CallMethod(PyTuple_GET_ITEM(sub, SUB_OBJECT), "is_needed", "O", state);
        int truth = needed == NULL ? -1 : PyObject_IsTrue(needed);
        Py_XDECREF(needed);
        if (truth < 0) {
            PyErr_Clear();
            return GIVE_UP;
        }
        if (!truth)
            continue;
        if (at < 0 && (out_open(out, &at) != OK || out_put(out, STRUCT_CODE, 8) != OK))
            return ERROR;
        PyObject *value = PyDict_GetItemWithError(state, PyTuple_GET_ITEM(sub, SUB_NAME));
        if (value == NULL && PyErr_Occurred()) {
            PyErr_Clear();
            return GIVE_UP;
        }
        int empty = value == NULL ? 1 : !PyObject_IsTrue(value);
        if (empty < 0) {
            PyErr_Clear();
            return GIVE_UP;
        }
        PyObject *sub_state = empty ? PyDict_New() : Py_NewRef(value);
        if (sub_state == NULL)
            return ERROR;
        Py_ssize_t entry;
        int status = OK;
        if (out_open(out, &entry) != OK || put_bytes(out, PyTuple_GET_ITEM(sub, SUB_SIGNATURE)) != OK ||
            put_bytes(out, PyTuple_GET_ITEM(sub, SUB_NAME_TLV)) != OK ||
            put_bytes(out, PyTuple_GET_ITEM(sub, SUB_VERSION_TLV)) != OK ||
            put_bytes(out, PyTuple_GET_ITEM(sub, SUB_CRITICAL_TLV)) != OK)
            status = ERROR;
        if (status == OK)
            status = encode_struct(PyTuple_GET_ITEM(sub, SUB_PLAN), sub_state, out);
        Py_DECREF(sub_state);
        if (status != OK)
            return status;
        out_close(out, entry);
    }
    if (at < 0)
        return out_put(out, EMPTY_LIST, 4);
    out_close(out, at);
    return OK;
}

static int encode_struct(PyObject *plan, PyObject *state, Out *out)
{
    if (!PyDict_CheckExact(state))
        return GIVE_UP;
    PyObject *ops = PyTuple_GET_ITEM(plan, S_OPS);
    Py_ssize_t n = PyTuple_GET_SIZE(ops);
    Slots slots;
    int mask, status = slots_open(&slots, n);
    if (status != OK)
        return status;
    PyObject **values = slots.values;
    int *present = slots.present;
    status = struct_values(plan, state, values, present, &mask);
    Py_ssize_t at = 0;
    if (status == OK) {
        PyObject *signatures = PyTuple_GET_ITEM(plan, S_SIGNATURES);
        PyObject *signature = PyTuple_GET_ITEM(signatures, mask);
        if (out_open(out, &at) != OK || out_put(out, PyBytes_AS_STRING(signature), PyBytes_GET_SIZE(signature)) != OK)
            status = ERROR;
    }
    for (Py_ssize_t i = 0; status == OK && i < n; i++)
        if (present[i])
            status = encode_value(PyTuple_GET_ITEM(ops, i), values[i], values, out);
    if (status == OK && PyTuple_GET_ITEM(plan, S_IS_DESCRIPTION) == Py_True)
        status = encode_subsections(plan, state, out);
    if (status == OK)
        out_close(out, at);
    slots_close(&slots);
    return status;
}

static PyObject *ber_encode(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *plan, *state;
    if (!PyArg_ParseTuple(args, "O!O:encode", &PyTuple_Type, &plan, &state))
        return NULL;
    Out out = {NULL, 0, 0};
    int status = encode_struct(plan, state, &out);
    PyObject *result = NULL;
    if (status == OK)
        result = PyBytes_FromStringAndSize(out.data, out.len);
    else if (status == GIVE_UP)
        result = Py_NewRef(Py_None);
    PyMem_Free(out.data);
    return result;
}

/* ------------------------------------------------------------------ decode */

typedef struct {
    const unsigned char *data;
    Py_ssize_t size;
} In;

/* A TLV header with tag ``tag`` at *pos: sets *content and *end (within the input). */
static int read_header(const In *in, Py_ssize_t *pos, unsigned char tag, Py_ssize_t *end)
{
    Py_ssize_t p = *pos;
    if (p + 2 > in->size || in->data[p] != tag)
        return GIVE_UP;
    Py_ssize_t length = in->data[p + 1];
    p += 2;
    if (length >= 0x80) {
        int count = (int)(length & 0x7f);
        if (count == 0 || count > 4 || p + count > in->size)
            return GIVE_UP; /* indefinite, or longer than any input we take */
        length = 0;
        for (int i = 0; i < count; i++)
            length = (length << 8) | in->data[p + i];
        p += count;
    }
    if (length > in->size - p)
        return GIVE_UP;
    *pos = p;
    *end = p + length;
    return OK;
}

static int decode_value(PyObject *op, const In *in, Py_ssize_t *pos, PyObject **siblings, PyObject **into);
static int decode_struct(PyObject *plan, const In *in, Py_ssize_t *pos, PyObject **into);

static int decode_integer(PyObject *op, const In *in, Py_ssize_t *pos, PyObject **into)
{
    Py_ssize_t p = *pos;
    if (p + 2 > in->size || in->data[p] != 0x02)
        return GIVE_UP;
    int size = in->data[p + 1];
    if (size < 1 || size > 9 || p + 2 + size > in->size)
        return GIVE_UP;
    const unsigned char *c = in->data + p + 2;
    if (size > 1 && ((c[0] == 0x00 && !(c[1] & 0x80)) || (c[0] == 0xff && (c[1] & 0x80))))
        return GIVE_UP; /* not minimal */
    int bits = (int)op_long(op, 1), is_signed = (int)op_long(op, 2);
    int negative = c[0] & 0x80;
    if (size == 9) {
        /* Only a uint64 of 2**63 or more needs a ninth octet, and then its first is 0. */
        if (negative || is_signed || bits < 64 || c[0] != 0x00)
            return GIVE_UP;
        c++;
        size = 8;
    }
    unsigned long long raw = negative ? ~0ULL : 0ULL;
    for (int i = 0; i < size; i++)
        raw = (raw << 8) | c[i];
    if (negative) {
        long long v = (long long)raw;
        if (!is_signed || (bits < 64 && v < -(1LL << (bits - 1))))
            return GIVE_UP;
        *into = PyLong_FromLongLong(v);
    } else {
        if (bits < 64 && raw > (is_signed ? (1ULL << (bits - 1)) - 1 : (1ULL << bits) - 1))
            return GIVE_UP;
        if (bits == 64 && is_signed && raw > (unsigned long long)LLONG_MAX)
            return GIVE_UP;
        *into = PyLong_FromUnsignedLongLong(raw);
    }
    *pos = p + 2 + (in->data[p + 1]);
    return *into == NULL ? ERROR : OK;
}

static int decode_list(PyObject *op, const In *in, Py_ssize_t *pos, PyObject **siblings, PyObject **into)
{
    Py_ssize_t p = *pos, end;
    if (read_header(in, &p, SEQUENCE, &end) != OK)
        return GIVE_UP;
    long fixed = op_long(op, 3), ref = op_long(op, 4), maximum = op_long(op, 6);
    Py_ssize_t expected = fixed;
    if (ref >= 0 && (expected = held_length(siblings, ref, op_long(op, 5))) < 0)
        return GIVE_UP;
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return ERROR;
    if (end - p == 2 && in->data[p] == 0x0c && in->data[p + 1] == 0) {
        p = end;
    } else {
        PyObject *code = PyTuple_GET_ITEM(op, 2), *element = PyTuple_GET_ITEM(op, 1);
        Py_ssize_t code_size = PyBytes_GET_SIZE(code);
        if (end - p < code_size || memcmp(in->data + p, PyBytes_AS_STRING(code), (size_t)code_size) != 0) {
            Py_DECREF(list);
            return GIVE_UP;
        }
        p += code_size;
        long limit = PyLong_AsLong(PyTuple_GET_ITEM(op, 7));
        In bounded = {in->data, end};
        while (p < end) {
            if (PyList_GET_SIZE(list) >= limit || (maximum >= 0 && PyList_GET_SIZE(list) >= maximum)) {
                Py_DECREF(list);
                return GIVE_UP;
            }
            PyObject *item = NULL;
            int status = decode_value(element, &bounded, &p, siblings, &item);
            if (status != OK || PyList_Append(list, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(list);
                return status != OK ? status : ERROR;
            }
            Py_DECREF(item);
        }
        if (PyList_GET_SIZE(list) == 0) { /* a code and no elements: not what our encoder writes */
            Py_DECREF(list);
            return GIVE_UP;
        }
    }
    if (expected >= 0 && PyList_GET_SIZE(list) != expected) {
        Py_DECREF(list);
        return GIVE_UP;
    }
    *pos = p;
    *into = list;
    return OK;
}

static int decode_value(PyObject *op, const In *in, Py_ssize_t *pos, PyObject **siblings, PyObject **into)
{
    Py_ssize_t p = *pos, end;
    switch (op_code(op)) {
    case OP_INT:
        return decode_integer(op, in, pos, into);
    case OP_BOOL:
        if (p + 3 > in->size || in->data[p] != 0x01 || in->data[p + 1] != 0x01)
            return GIVE_UP;
        if (in->data[p + 2] == 0xff)
            *into = Py_NewRef(Py_True);
        else if (in->data[p + 2] == 0x00)
            *into = Py_NewRef(Py_False);
        else
            return GIVE_UP;
        *pos = p + 3;
        return OK;
    case OP_BUF: {
        if (read_header(in, &p, 0x04, &end) != OK)
            return GIVE_UP;
        long fixed = op_long(op, 1), ref = op_long(op, 2);
        Py_ssize_t expected = ref >= 0 ? held_length(siblings, ref, op_long(op, 3)) : fixed;
        if (expected < 0 || end - p != expected)
            return GIVE_UP;
        *into = PyBytes_FromStringAndSize((const char *)in->data + p, end - p);
        *pos = end;
        return *into == NULL ? ERROR : OK;
    }
    case OP_STR:
        if (read_header(in, &p, 0x0c, &end) != OK)
            return GIVE_UP;
        *into = PyUnicode_DecodeUTF8((const char *)in->data + p, end - p, "strict");
        if (*into == NULL) {
            PyErr_Clear();
            return GIVE_UP;
        }
        *pos = end;
        return OK;
    case OP_STRUCT:
        return decode_struct(PyTuple_GET_ITEM(op, 1), in, pos, into);
    case OP_LIST:
        return decode_list(op, in, pos, siblings, into);
    }
    return GIVE_UP;
}

static int validated(PyObject *plan, PyObject *state)
{
    PyObject *validate = PyTuple_GET_ITEM(plan, S_VALIDATE);
    if (validate == Py_None)
        return OK;
    PyObject *problems = PyObject_CallOneArg(validate, state);
    PyObject *iterator = problems ? PyObject_GetIter(problems) : NULL;
    Py_XDECREF(problems);
    PyObject *first = iterator ? PyIter_Next(iterator) : NULL;
    Py_XDECREF(iterator);
    if (first != NULL || PyErr_Occurred()) {
        Py_XDECREF(first);
        PyErr_Clear();
        return GIVE_UP; /* the generic path reports the problem */
    }
    return OK;
}

static int decode_fields(PyObject *plan, const In *in, Py_ssize_t *pos, PyObject **values, int mask)
{
    PyObject *ops = PyTuple_GET_ITEM(plan, S_OPS), *whens = PyTuple_GET_ITEM(plan, S_WHENS);
    PyObject *defaults = PyTuple_GET_ITEM(plan, S_DEFAULTS);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(ops); i++) {
        PyObject *op = PyTuple_GET_ITEM(ops, i), *when = PyTuple_GET_ITEM(whens, i);
        int present = op != Py_None;
        if (present && when != Py_None) {
            int equal = PyObject_RichCompareBool(values[PyLong_AsLong(PyTuple_GET_ITEM(when, 0))],
                                                 PyTuple_GET_ITEM(when, 1), Py_EQ);
            if (equal < 0) {
                PyErr_Clear();
                return GIVE_UP;
            }
            int sent = (mask >> PyLong_AsLong(PyTuple_GET_ITEM(when, 2))) & 1;
            if (equal != sent)
                return GIVE_UP; /* the signature and the sibling's value disagree */
            present = equal;
        }
        int status = present ? decode_value(op, in, pos, values, &values[i])
                             : default_of(PyTuple_GET_ITEM(defaults, i), &values[i]);
        if (status != OK)
            return status;
    }
    return OK;
}

static int starts_with(const In *in, Py_ssize_t p, Py_ssize_t end, PyObject *bytes)
{
    Py_ssize_t size = PyBytes_GET_SIZE(bytes);
    return end - p >= size && memcmp(in->data + p, PyBytes_AS_STRING(bytes), (size_t)size) == 0;
}

/* A description's subsection list: entries of known names, each at its subsection's
 * own version, none twice, added to ``state`` in stream order. */
static int decode_subsections(PyObject *plan, const In *in, Py_ssize_t *pos, PyObject *state)
{
    Py_ssize_t p = *pos, end;
    if (read_header(in, &p, SEQUENCE, &end) != OK)
        return GIVE_UP;
    if (end - p == 2 && in->data[p] == 0x0c && in->data[p + 1] == 0) {
        *pos = end;
        return OK;
    }
    if (end - p < 8 || memcmp(in->data + p, STRUCT_CODE, 8) != 0)
        return GIVE_UP;
    p += 8;
    PyObject *subsections = PyTuple_GET_ITEM(plan, S_SUBSECTIONS);
    In bounded = {in->data, end};
    int read = 0;
    while (p < end) {
        Py_ssize_t entry_end, q = p;
        if (read_header(&bounded, &q, SEQUENCE, &entry_end) != OK)
            return GIVE_UP;
        PyObject *sub = NULL;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(subsections) && sub == NULL; k++) {
            PyObject *candidate = PyTuple_GET_ITEM(subsections, k);
            if (starts_with(in, q, entry_end, PyTuple_GET_ITEM(candidate, SUB_SIGNATURE)))
                sub = candidate;
        }
        if (sub == NULL)
            return GIVE_UP; /* a name this description does not know, or another form */
        q += PyBytes_GET_SIZE(PyTuple_GET_ITEM(sub, SUB_SIGNATURE));
        PyObject *name_tlv = PyTuple_GET_ITEM(sub, SUB_NAME_TLV), *version_tlv = PyTuple_GET_ITEM(sub, SUB_VERSION_TLV);
        if (!starts_with(in, q, entry_end, name_tlv))
            return GIVE_UP;
        q += PyBytes_GET_SIZE(name_tlv);
        if (!starts_with(in, q, entry_end, version_tlv))
            return GIVE_UP; /* another version: the Python paths decide */
        q += PyBytes_GET_SIZE(version_tlv);
        if (entry_end - q < 3 || in->data[q] != 0x01 || in->data[q + 1] != 0x01 ||
            (in->data[q + 2] != 0x00 && in->data[q + 2] != 0xff))
            return GIVE_UP;
        q += 3;
        PyObject *name = PyTuple_GET_ITEM(sub, SUB_NAME);
        int seen = PyDict_Contains(state, name);
        if (seen != 0) {
            PyErr_Clear();
            return GIVE_UP; /* twice (or a field of that name): the generic path says so */
        }
        In inner = {in->data, entry_end};
        PyObject *value = NULL;
        int status = decode_struct(PyTuple_GET_ITEM(sub, SUB_PLAN), &inner, &q, &value);
        if (status != OK)
            return status;
        status = q == entry_end ? (PyDict_SetItem(state, name, value) < 0 ? ERROR : OK) : GIVE_UP;
        Py_DECREF(value);
        if (status != OK)
            return status;
        p = entry_end;
        read++;
    }
    if (read == 0)
        return GIVE_UP;
    *pos = p;
    return OK;
}

static int decode_struct(PyObject *plan, const In *in, Py_ssize_t *pos, PyObject **into)
{
    Py_ssize_t p = *pos, end;
    if (read_header(in, &p, SEQUENCE, &end) != OK)
        return GIVE_UP;
    PyObject *signatures = PyTuple_GET_ITEM(plan, S_SIGNATURES);
    int mask = -1;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(signatures); k++) {
        PyObject *signature = PyTuple_GET_ITEM(signatures, k);
        Py_ssize_t size = PyBytes_GET_SIZE(signature);
        if (end - p >= size && memcmp(in->data + p, PyBytes_AS_STRING(signature), (size_t)size) == 0) {
            mask = (int)k;
            p += size;
            break;
        }
    }
    if (mask < 0)
        return GIVE_UP;
    PyObject *names = PyTuple_GET_ITEM(plan, S_NAMES);
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    Slots slots;
    int status = slots_open(&slots, n);
    if (status != OK)
        return status;
    PyObject **values = slots.values;
    In bounded = {in->data, end};
    status = decode_fields(plan, &bounded, &p, values, mask);
    PyObject *state = NULL;
    if (status == OK) {
        state = PyDict_New();
        if (state == NULL)
            status = ERROR;
        for (Py_ssize_t i = 0; status == OK && i < n; i++)
            if (PyDict_SetItem(state, PyTuple_GET_ITEM(names, i), values[i]) < 0)
                status = ERROR;
    }
    if (status == OK && PyTuple_GET_ITEM(plan, S_IS_DESCRIPTION) == Py_True)
        status = decode_subsections(plan, &bounded, &p, state);
    if (status == OK && p != end)
        status = GIVE_UP;
    if (status == OK)
        status = validated(plan, state);
    slots_close(&slots);
    if (status != OK) {
        Py_XDECREF(state);
        return status;
    }
    *pos = p;
    *into = state;
    return OK;
}

static PyObject *ber_decode(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *plan;
    Py_buffer view;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!y*n:decode", &PyTuple_Type, &plan, &view, &start))
        return NULL;
    In in = {view.buf, view.len};
    PyObject *state = NULL, *result = NULL;
    Py_ssize_t pos = start;
    int status = start < 0 || start > view.len ? GIVE_UP : decode_struct(plan, &in, &pos, &state);
    if (status == OK) {
        result = Py_BuildValue("(Nn)", state, pos);
    } else if (status == GIVE_UP)
        result = Py_NewRef(Py_None);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", ber_encode, METH_VARARGS, "encode(plan, state) -> bytes, or None when the Python paths must decide."},
    {"decode", ber_decode, METH_VARARGS,
     "decode(plan, data, start) -> (state, end), or None when the Python paths must decide."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_berc", "The native BER fast path: plans run over states and bytes.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__berc(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "PLAN_VERSION", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
