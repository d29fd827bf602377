/* Compiled loops of preprocessing: basket decoding, cell lookup, per-event cells, cone search, point assembly.
 *
 * These were numba kernels. A numba process spends ~1 CPU-s before its first kernel runs (numba's
 * import, its target's registries, scipy's BLAS check, extension entry points, loading each cached
 * kernel), and every preprocessing worker is a fresh process: with two workers on two cores that
 * was a tenth of a run. Compiled once at install, the same loops load with the module.
 *
 * Arithmetic follows the numba code operation for operation (float64 for angles and truth sums,
 * float32 for the distance to the focal track, min/max as Python's), and the build turns off
 * floating-point contraction, so the samples are bit-for-bit the same. Arrays arrive through the
 * buffer protocol; each argument's element kind and size are checked against the kernel's spec
 * (``parse``), so a wrong dtype is a TypeError naming the argument rather than garbage. The Python
 * wrappers in the modules that call these allocate outputs and scratch space.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_ARGS 64

/* Big-endian 32-bit word at p, unsigned: a count >= 2**31 is a negative int32. */
static inline int64_t be32(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return (int64_t)__builtin_bswap32(w);
}

/* ---- argument parsing: one token per argument ------------------------------------------------
 * Arrays: a kind (f float, i signed, u unsigned, b bool) and a size in bytes, "!" if written;
 * scalars: "n" (int64), "U" (uint64), "d" (double), "?" (bool). */

typedef struct {
    int n;
    Py_buffer view[MAX_ARGS];
    int held[MAX_ARGS];
    void *p[MAX_ARGS];
    Py_ssize_t len[MAX_ARGS];
    int64_t i[MAX_ARGS];
    uint64_t u[MAX_ARGS];
    double d[MAX_ARGS];
} Args;

static void release(Args *a)
{
    for (int k = 0; k < a->n; k++)
        if (a->held[k])
            PyBuffer_Release(&a->view[k]);
}

static char kind_of(const char *format)
{
    if (format == NULL)
        return 'u'; /* plain bytes */
    while (*format == '@' || *format == '=' || *format == '<')
        format++;
    switch (*format) {
    case 'f': case 'd': return 'f';
    case 'b': case 'h': case 'i': case 'l': case 'q': return 'i';
    case 'B': case 'H': case 'I': case 'L': case 'Q': return 'u';
    case '?': return 'b';
    default: return 0;
    }
}

static int parse(PyObject *args, const char *name, const char *spec, Args *a)
{
    Py_ssize_t given = PyTuple_GET_SIZE(args);
    memset(a->held, 0, sizeof a->held);
    a->n = 0;
    const char *s = spec;
    for (int k = 0; *s; k++) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        if (k >= given || k >= MAX_ARGS) {
            PyErr_Format(PyExc_TypeError, "%s: too few arguments (%zd)", name, given);
            return -1;
        }
        PyObject *obj = PyTuple_GET_ITEM(args, k);
        a->n = k + 1;
        char c = *s++;
        if (c == 'n' || c == 'U' || c == 'd' || c == '?') {
            if (c == 'n' || c == 'U') { /* any integer, numpy's included */
                PyObject *index = PyNumber_Index(obj);
                if (index != NULL) {
                    if (c == 'n')
                        a->i[k] = PyLong_AsLongLong(index);
                    else
                        a->u[k] = PyLong_AsUnsignedLongLong(index);
                    Py_DECREF(index);
                }
            } else if (c == 'd')
                a->d[k] = PyFloat_AsDouble(obj);
            else
                a->i[k] = PyObject_IsTrue(obj);
            if (PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError, "%s: argument %d must be %s", name, k,
                             c == 'd' ? "a float" : c == '?' ? "a bool" : c == 'U' ? "an int >= 0" : "an int");
                return -1;
            }
            continue;
        }
        int size = *s++ - '0';
        int out = *s == '!';
        if (out)
            s++;
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (out ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(obj, &a->view[k], flags) < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: argument %d must be a C-contiguous%s array", name, k,
                         out ? ", writable" : "");
            return -1;
        }
        a->held[k] = 1;
        if (a->view[k].itemsize != size || kind_of(a->view[k].format) != c) {
            PyErr_Format(PyExc_TypeError, "%s: argument %d has element type '%s' (%zd bytes), not %c%d", name, k,
                         a->view[k].format ? a->view[k].format : "B", a->view[k].itemsize, c, size);
            return -1;
        }
        a->p[k] = a->view[k].buf;
        a->len[k] = a->view[k].len / size;
    }
    if (a->n != given) {
        PyErr_Format(PyExc_TypeError, "%s: %zd arguments given, %d expected", name, given, a->n);
        return -1;
    }
    return 0;
}

/* ---- basket decoding -------------------------------------------------------------------------- */

#define BAD_HEADER -1
#define BAD_COUNT -2
#define OVERRUN -3
#define NEGATIVE (((int64_t)1) << 31)

typedef struct {
    const uint8_t *data;
    int64_t depth, itemsize, capacity;
    int64_t *offsets, *fill; /* offsets: depth rows of capacity */
    uint8_t *values;
    int64_t n_values, nv; /* capacity of values; value bytes written so far */
} Decoder;

/* Copy a run of k values at p (within end) to the values; 0, or OVERRUN. */
static inline int take_values(Decoder *d, int64_t *p, int64_t end, int64_t k)
{
    int64_t nbytes = k * d->itemsize;
    if (*p + nbytes > end || d->nv + nbytes > d->n_values)
        return OVERRUN;
    memcpy(d->values + d->nv, d->data + *p, nbytes);
    d->nv += nbytes;
    *p += nbytes;
    return 0;
}

/* Decode one entry, data[p:end]: 0, or the error code. */
static int decode_entry(Decoder *d, int64_t p, int64_t end)
{
    const uint8_t *data = d->data;
    int64_t leaf = d->depth - 1, capacity = d->capacity;
    int64_t stack_left[8];
    if (end - p < 10 || (be32(data + p) & 0x3FFFFFFF) != end - p - 4)
        return BAD_HEADER;
    p += 6;
    int64_t level = 0;
    stack_left[0] = 1; /* the entry's outer vector */
    while (level >= 0) {
        if (stack_left[level] == 0) {
            level--;
            continue;
        }
        stack_left[level]--;
        if (p + 4 > end)
            return OVERRUN;
        int64_t k = be32(data + p);
        p += 4;
        if (k >= NEGATIVE)
            return BAD_COUNT;
        int64_t *off = d->offsets + level * capacity;
        int64_t f = d->fill[level];
        if (f + 1 >= capacity)
            return OVERRUN;
        off[f + 1] = off[f] + k;
        d->fill[level] = f + 1;
        if (level == leaf) { /* depth 1: the entry's own vector holds the values */
            if (take_values(d, &p, end, k))
                return OVERRUN;
        } else if (level + 1 < leaf) {
            level++;
            stack_left[level] = k;
        } else { /* k leaves: each a count and that many values */
            int64_t *loff = d->offsets + leaf * capacity;
            int64_t g = d->fill[leaf];
            if (g + k >= capacity)
                return OVERRUN;
            int64_t total = loff[g];
            for (int64_t t = 0; t < k; t++) {
                if (p + 4 > end)
                    return OVERRUN;
                int64_t c = be32(data + p);
                p += 4;
                g++;
                if (c >= NEGATIVE)
                    return BAD_COUNT;
                if (c > 0 && take_values(d, &p, end, c)) /* most cells' truth lists are empty */
                    return OVERRUN;
                total += c;
                loff[g] = total;
            }
            d->fill[leaf] = g;
        }
    }
    return p == end ? 0 : BAD_HEADER;
}

static PyObject *decode(PyObject *self, PyObject *args)
{
    Args a;
    if (parse(args, "decode", "u1 i8 i8 n n i8! i8! u1!", &a) < 0) {
        release(&a);
        return NULL;
    }
    const int64_t *starts = a.p[1], *ends = a.p[2];
    int64_t n_data = a.len[0], n_entries = a.len[1];
    Decoder d = {a.p[0], a.i[3], a.i[4], a.view[5].ndim == 2 ? a.view[5].shape[1] : 0, a.p[5], a.p[6], a.p[7],
                 a.len[7], 0};
    if (a.len[2] != n_entries || d.depth < 1 || d.depth > 8 || a.view[5].ndim != 2 || a.view[5].shape[0] < d.depth ||
        a.len[6] < d.depth || d.capacity < 1) {
        release(&a);
        PyErr_SetString(PyExc_ValueError, "decode: inconsistent array shapes");
        return NULL;
    }
    for (int64_t e = 0; e < n_entries; e++)
        if (starts[e] < 0 || ends[e] > n_data || ends[e] < starts[e]) {
            release(&a);
            PyErr_Format(PyExc_ValueError, "decode: entry %lld lies outside the data", (long long)e);
            return NULL;
        }
    int64_t code = 0, bad = -1;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t level = 0; level < d.depth; level++) {
        d.fill[level] = 0;
        d.offsets[level * d.capacity] = 0;
    }
    for (int64_t e = 0; e < n_entries; e++)
        if ((code = decode_entry(&d, starts[e], ends[e])) != 0) {
            bad = e;
            break;
        }
    if (bad < 0)
        code = d.nv;
    Py_END_ALLOW_THREADS
    release(&a);
    return Py_BuildValue("(LL)", (long long)code, (long long)bad);
}

/* ---- cell lookup ------------------------------------------------------------------------------ */

#define GOLDEN 0x9E3779B97F4A7C15ULL

/* Cell index of one ID (-1 if absent): linear probing from its Fibonacci hash. */
static inline int64_t probe(uint64_t key, const uint64_t *table_ids, const int32_t *table_pos, int64_t mask,
                            uint64_t shift)
{
    int64_t slot = (int64_t)((key * GOLDEN) >> shift);
    for (;;) {
        int32_t pos = table_pos[slot];
        if (pos < 0 || table_ids[slot] == key)
            return pos;
        slot = (slot + 1) & mask;
    }
}

static PyObject *lookup(PyObject *self, PyObject *args)
{
    Args a;
    if (parse(args, "lookup", "u8 u8 i4 U i8!", &a) < 0) {
        release(&a);
        return NULL;
    }
    const uint64_t *ids = a.p[0], *table_ids = a.p[1];
    const int32_t *table_pos = a.p[2];
    int64_t *out = a.p[4];
    int64_t n = a.len[0], mask = a.len[1] - 1;
    if (a.len[4] != n || a.len[2] != a.len[1] || a.len[1] < 1 || (a.len[1] & mask) || a.u[3] >= 64) {
        release(&a);
        PyErr_SetString(PyExc_ValueError, "lookup: inconsistent arrays");
        return NULL;
    }
    uint64_t shift = a.u[3];
    Py_BEGIN_ALLOW_THREADS
    for (int64_t i = 0; i < n; i++)
        out[i] = probe(ids[i], table_ids, table_pos, mask, shift);
    Py_END_ALLOW_THREADS
    release(&a);
    Py_RETURN_NONE;
}

/* ---- each event's clustered cells ------------------------------------------------------------- */

#define DIGIT 9

static PyObject *event_cells(PyObject *self, PyObject *args)
{
    Args a;
    const char *spec = "i8 i8 u8 u8 i4 U i8 f4 f4 n n i8 i4 f4 i8 b1 ? "
                       "i8! i8! i8! f4! f4! f8! f8! i8! i8! f4! i8! "
                       "i8 i8! i4! i8! i8! i8! i8! i8! i8! f8! f8! i8!";
    if (parse(args, "event_cells", spec, &a) < 0) {
        release(&a);
        return NULL;
    }
    const int64_t *clu_off = a.p[0], *cell_off = a.p[1];
    const uint64_t *ids = a.p[2], *table_ids = a.p[3];
    const int32_t *table_pos = a.p[4];
    uint64_t shift = a.u[5];
    const int64_t *grid_cell = a.p[6];
    const float *geo_eta = a.p[7], *geo_phi = a.p[8];
    int64_t grid_size = a.i[9], rank_bits = a.i[10];
    const int64_t *dep_off = a.p[11];
    const int32_t *dep_index = a.p[12];
    const float *dep_energy = a.p[13];
    const int64_t *truth_off = a.p[14];
    const uint8_t *tracked = a.p[15];
    int clip = (int)a.i[16];
    int64_t *raw = a.p[17], *geo = a.p[18], *key = a.p[19];
    float *eta = a.p[20], *phi = a.p[21];
    double *truth_total = a.p[22], *truth_tracked = a.p[23];
    int64_t *cluster = a.p[24], *particle = a.p[25];
    float *energy = a.p[26];
    int64_t *counts = a.p[27];
    /* from the caller: each event's first listing (cell_off[clu_off]); then scratch: each listing's
     * cell, the stamp of the event + 1 that last kept each cell, and per kept cell of an event: sort
     * keys and slots (two copies each for the radix passes), listing, cell, truth sums; the radix
     * histogram */
    const int64_t *first = a.p[28];
    int64_t *cell = a.p[29];
    int32_t *stamp = a.p[30];
    int64_t *key_a = a.p[31], *key_b = a.p[32], *slot_a = a.p[33], *slot_b = a.p[34];
    int64_t *b_raw = a.p[35], *b_geo = a.p[36];
    double *b_total = a.p[37], *b_tracked = a.p[38];
    int64_t *hist = a.p[39];
    int64_t n_ev = a.len[0] - 1, n_clu = a.len[1] - 1, n_ids = a.len[2], none = a.len[15] - 1;
    int64_t widest = a.len[31];
    int64_t result = 0;
    int ok = n_ev >= 0 && n_clu >= 0 && none >= 0 && a.len[3] == a.len[4] && a.len[27] >= 2 &&
             a.len[28] == n_ev + 1 && a.len[29] == n_ids && a.len[30] == a.len[6] && a.len[39] == (1 << DIGIT) + 1;
    for (int k = 32; k <= 38 && ok; k++)
        ok = a.len[k] == widest;
    if (!ok) {
        release(&a);
        PyErr_SetString(PyExc_ValueError, "event_cells: inconsistent arrays");
        return NULL;
    }
    int64_t mask = a.len[3] - 1;
    Py_BEGIN_ALLOW_THREADS
    /* the lookup first, as a flat loop of independent probes (the table is larger than the cache) */
    for (int64_t i = 0; i < n_ids; i++)
        cell[i] = probe(ids[i], table_ids, table_pos, mask, shift);
    for (int64_t i = 0; i < n_ids; i++)
        if (cell[i] < 0) {
            result = -(i + 1);
            break;
        }
    if (result == 0) {
        for (int64_t cl = 0; cl < n_clu; cl++)
            for (int64_t i = cell_off[cl]; i < cell_off[cl + 1]; i++)
                cluster[i] = cl;
        for (int64_t e = 0; e < n_ev; e++)
            for (int64_t i = first[e]; i < first[e + 1]; i++)
                cluster[i] -= clu_off[e];
        int64_t m = 0;
        for (int64_t e = 0; e < n_ev; e++) {
            int64_t c = 0, t0 = truth_off[e], n_truth = truth_off[e + 1] - t0;
            for (int64_t i = first[e]; i < first[e + 1]; i++) {
                int64_t g = cell[i];
                double total = 0.0, from_tracked = 0.0;
                for (int64_t k = dep_off[i]; k < dep_off[i + 1]; k++) {
                    float x = dep_energy[k];
                    if (clip && x < 0) {
                        x = 0.0f;
                        counts[0] += 1;
                    }
                    int64_t j = (int64_t)dep_index[k];
                    int64_t p = none;
                    if (0 <= j && j < n_truth)
                        p = t0 + j;
                    else
                        counts[1] += 1;
                    particle[k] = p;
                    energy[k] = x;
                    total += (double)x;
                    from_tracked += tracked[p] ? (double)x : 0.0;
                }
                if (stamp[g] != e + 1) { /* a cell's first listing in the event is kept */
                    stamp[g] = (int32_t)(e + 1);
                    key_a[c] = g;
                    slot_a[c] = c;
                    b_raw[c] = i, b_geo[c] = g, b_total[c] = total, b_tracked[c] = from_tracked;
                    c++;
                }
            }
            int64_t *ka = key_a, *kb = key_b, *sa = slot_a, *sb = slot_b;
            for (int64_t shift_by = 0; shift_by < rank_bits; shift_by += DIGIT) { /* LSD radix sort by key */
                memset(hist, 0, sizeof(int64_t) * ((1 << DIGIT) + 1));
                for (int64_t k = 0; k < c; k++)
                    hist[((ka[k] >> shift_by) & ((1 << DIGIT) - 1)) + 1]++;
                for (int64_t d = 0; d < (1 << DIGIT); d++)
                    hist[d + 1] += hist[d];
                for (int64_t k = 0; k < c; k++) {
                    int64_t d = (ka[k] >> shift_by) & ((1 << DIGIT) - 1);
                    int64_t to = hist[d]++;
                    kb[to] = ka[k];
                    sb[to] = sa[k];
                }
                int64_t *t = ka;
                ka = kb, kb = t;
                t = sa, sa = sb, sb = t;
            }
            for (int64_t k = 0; k < c; k++) {
                int64_t s = sa[k], g = b_geo[s];
                raw[m] = b_raw[s], geo[m] = g;
                key[m] = e * grid_size + grid_cell[g];
                eta[m] = geo_eta[g], phi[m] = geo_phi[g];
                truth_total[m] = b_total[s], truth_tracked[m] = b_tracked[s];
                m++;
            }
        }
        result = m;
    }
    Py_END_ALLOW_THREADS
    release(&a);
    return PyLong_FromLongLong((long long)result);
}

/* ---- cone search ------------------------------------------------------------------------------ */

static PyObject *cone_cells(PyObject *self, PyObject *args)
{
    Args a;
    if (parse(args, "cone_cells", "i8 i8 i8 f4 f4 f4 f4 d i8! i8! f8!", &a) < 0) {
        release(&a);
        return NULL;
    }
    const int64_t *query = a.p[0], *start = a.p[1], *count = a.p[2];
    const float *eta = a.p[3], *phi = a.p[4], *ref_eta = a.p[5], *ref_phi = a.p[6];
    double radius = a.d[7];
    int64_t *out_q = a.p[8], *out_p = a.p[9];
    double *out_dr = a.p[10];
    int64_t n_ranges = a.len[2], capacity = a.len[8], total = 0;
    for (int64_t i = 0; i < n_ranges; i++) {
        total += count[i];
        if (start[i] < 0 || count[i] < 0 || start[i] + count[i] > a.len[3] || query[i] < 0 || query[i] >= a.len[5]) {
            release(&a);
            PyErr_Format(PyExc_ValueError, "cone_cells: range %lld lies outside the arrays", (long long)i);
            return NULL;
        }
    }
    if (a.len[0] != n_ranges || a.len[1] != n_ranges || a.len[4] != a.len[3] || a.len[6] != a.len[5] ||
        capacity < total || a.len[9] != capacity || a.len[10] != capacity) {
        release(&a);
        PyErr_SetString(PyExc_ValueError, "cone_cells: inconsistent arrays");
        return NULL;
    }
    int64_t n = 0;
    Py_BEGIN_ALLOW_THREADS
    double r2 = radius * radius;
    for (int64_t i = 0; i < n_ranges; i++) {
        int64_t q = query[i];
        double e0 = (double)ref_eta[q], f0 = (double)ref_phi[q];
        for (int64_t j = start[i]; j < start[i] + count[i]; j++) {
            double d_eta = (double)eta[j] - e0;
            double d_phi = (double)phi[j] - f0;
            if (d_phi > M_PI)
                d_phi -= 2 * M_PI;
            else if (d_phi < -M_PI)
                d_phi += 2 * M_PI;
            double dr2 = d_eta * d_eta + d_phi * d_phi;
            if (dr2 <= r2) {
                out_q[n] = q;
                out_p[n] = j;
                out_dr[n] = sqrt(dr2);
                n++;
            }
        }
    }
    Py_END_ALLOW_THREADS
    release(&a);
    return PyLong_FromLongLong((long long)n);
}

/* ---- point assembly --------------------------------------------------------------------------- */

#define N_STATS 10 /* point_kernels.STAT_ORDER */

static inline void accumulate(double *m, double v)
{
    m[0] += 1.0;
    m[1] += v;
    m[2] += v * v;
    m[3] = v < m[3] ? v : m[3]; /* Python's min(m, v) and max(m, v), as numba compiles them */
    m[4] = v > m[4] ? v : m[4];
}

typedef struct {
    float *x, *y, *z, *delta_r, *dist_focal, *energy, *sigma, *chi2_ndof;
    int8_t *point_type;
    int16_t *track;
    int8_t *layer;
    uint64_t *cell_id;
    int16_t *cluster;
    float *truth_focal, *truth_other_tracked, *truth_untracked, *truth_total;
} Points;

static inline void point_moments(double *moments, int ptype, const Points *o, int64_t pos)
{
    double *m = moments + ptype * N_STATS * 5;
    accumulate(m + 0, (double)o->x[pos]); /* in STAT_ORDER */
    accumulate(m + 5, (double)o->y[pos]);
    accumulate(m + 10, (double)o->z[pos]);
    accumulate(m + 15, (double)o->delta_r[pos]);
    accumulate(m + 20, (double)o->dist_focal[pos]);
    accumulate(m + 25, (double)o->energy[pos]);
    accumulate(m + 30, (double)o->sigma[pos]);
    accumulate(m + 35, (double)o->chi2_ndof[pos]);
    accumulate(m + 40, (double)o->layer[pos]);
    accumulate(m + 45, (double)o->track[pos]);
}

typedef struct {
    const float *x, *y, *z; /* per track layer point */
    const int64_t *trk;
    const int8_t *sampling;
    const float *pt, *chi2; /* per track */
    const int64_t *local;
} Tracks;

/* A focal-track (ptype 1) or other-track (2) layer point p at pos; dist_focal is the caller's. */
static inline void track_point(Points *o, int64_t pos, int64_t p, double dr, int ptype, const Tracks *tp)
{
    int64_t t = tp->trk[p];
    o->x[pos] = tp->x[p], o->y[pos] = tp->y[p], o->z[pos] = tp->z[p];
    o->delta_r[pos] = (float)dr;
    o->energy[pos] = tp->pt[t];
    o->chi2_ndof[pos] = tp->chi2[t];
    o->point_type[pos] = (int8_t)ptype;
    o->track[pos] = (int16_t)tp->local[t];
    o->layer[pos] = tp->sampling[p];
    o->cluster[pos] = -1;
}

/* Distance (float32 arithmetic) from a point to the nearest of the focal track's points. */
static inline float nearest(float px, float py, float pz, const int64_t *focal, int64_t n, const float *f_x,
                            const float *f_y, const float *f_z)
{
    float best = INFINITY;
    for (int64_t k = 0; k < n; k++) {
        int64_t q = focal[k];
        float dx = px - f_x[q], dy = py - f_y[q], dz = pz - f_z[q];
        float d = 0.0f;
        d += dx * dx;
        d += dy * dy;
        d += dz * dz;
        best = d < best ? d : best;
    }
    return sqrtf(best);
}

static PyObject *assemble(PyObject *self, PyObject *args)
{
    Args a;
    const char *spec = "i8 i8 n "
                       "i8 i8 f8 i8 i8 f8 i8 i8 f8 "
                       "f4 f4 f4 i8 i1 f4 f4 i8 "
                       "i8 i8 f4 f4 f4 f4 i1 "
                       "f4 u8 i8 "
                       "f8 f8 i8 i8 i8 f4 "
                       "f4! f4! f4! f4! f4! f4! f4! f4! i1! i2! i1! u8! i2! f4! f4! f4! f4! f8!";
    if (parse(args, "assemble", spec, &a) < 0) {
        release(&a);
        return NULL;
    }
    const int64_t *order = a.p[0], *offsets = a.p[1];
    int64_t n_train = a.i[2];
    const int64_t *f_first = a.p[3], *f_p = a.p[4];
    const double *f_dr = a.p[5];
    const int64_t *c_first = a.p[6], *c_u = a.p[7];
    const double *c_dr = a.p[8];
    const int64_t *o_first = a.p[9], *o_p = a.p[10];
    const double *o_dr = a.p[11];
    const float *p_x = a.p[12], *p_y = a.p[13], *p_z = a.p[14];
    Tracks tp = {p_x, p_y, p_z, a.p[15], a.p[16], a.p[17], a.p[18], a.p[19]};
    const int64_t *u_g = a.p[20], *unique = a.p[21];
    const float *geo_x = a.p[22], *geo_y = a.p[23], *geo_z = a.p[24], *geo_sigma = a.p[25];
    const int8_t *geo_sampling = a.p[26];
    const float *raw_e = a.p[27];
    const uint64_t *raw_id = a.p[28];
    const int64_t *raw_cluster = a.p[29];
    const double *e_total = a.p[30], *e_tracked = a.p[31];
    const int64_t *focal_part = a.p[32], *contrib_off = a.p[33], *contrib_part = a.p[34];
    const float *contrib_e = a.p[35];
    Points o = {a.p[36], a.p[37], a.p[38], a.p[39], a.p[40], a.p[41], a.p[42], a.p[43], a.p[44], a.p[45],
                a.p[46], a.p[47], a.p[48], a.p[49], a.p[50], a.p[51], a.p[52]};
    double *moments = a.p[53];
    int64_t n_out = a.len[0], n_points = a.len[36];
    int ok = a.len[1] == n_out + 1 && a.len[53] == 3 * N_STATS * 5 && n_out >= 0;
    for (int k = 37; k <= 52 && ok; k++)
        ok = a.len[k] == n_points;
    if (ok && n_out > 0)
        ok = offsets[n_out] <= n_points;
    if (!ok) {
        release(&a);
        PyErr_SetString(PyExc_ValueError, "assemble: inconsistent arrays");
        return NULL;
    }
    int64_t mostly_focal = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t i = 0; i < n_out; i++) {
        int64_t s = order[i], pos = offsets[i];
        int stats = i < n_train;
        int64_t f0 = f_first[s], f1 = f_first[s + 1];
        const int64_t *focal = f_p + f0;
        for (int64_t j = f0; j < f1; j++) {
            track_point(&o, pos, f_p[j], f_dr[j], 1, &tp);
            if (stats)
                point_moments(moments, 1, &o, pos);
            pos++;
        }
        int64_t fp = focal_part[s];
        for (int64_t j = c_first[s]; j < c_first[s + 1]; j++) {
            int64_t u = c_u[j], g = u_g[u], raw = unique[u];
            o.x[pos] = geo_x[g], o.y[pos] = geo_y[g], o.z[pos] = geo_z[g];
            o.delta_r[pos] = (float)c_dr[j];
            o.dist_focal[pos] = nearest(geo_x[g], geo_y[g], geo_z[g], focal, f1 - f0, p_x, p_y, p_z);
            o.energy[pos] = raw_e[raw];
            o.sigma[pos] = geo_sigma[g];
            o.track[pos] = -1;
            o.layer[pos] = geo_sampling[g];
            o.cell_id[pos] = raw_id[raw];
            o.cluster[pos] = (int16_t)raw_cluster[raw];
            double total = e_total[u], tracked = e_tracked[u], focal_e = 0.0;
            if (tracked > 0 && fp >= 0)
                for (int64_t k = contrib_off[raw]; k < contrib_off[raw + 1]; k++)
                    if (contrib_part[k] == fp)
                        focal_e += (double)contrib_e[k];
            o.truth_total[pos] = (float)total;
            o.truth_focal[pos] = (float)focal_e;
            o.truth_other_tracked[pos] = (float)(tracked - focal_e);
            o.truth_untracked[pos] = (float)(total - tracked);
            if (total > 0 && focal_e >= 0.5 * total)
                mostly_focal++;
            if (stats)
                point_moments(moments, 0, &o, pos);
            pos++;
        }
        for (int64_t j = o_first[s]; j < o_first[s + 1]; j++) {
            int64_t p = o_p[j];
            track_point(&o, pos, p, o_dr[j], 2, &tp);
            o.dist_focal[pos] = nearest(p_x[p], p_y[p], p_z[p], focal, f1 - f0, p_x, p_y, p_z);
            if (stats)
                point_moments(moments, 2, &o, pos);
            pos++;
        }
    }
    Py_END_ALLOW_THREADS
    release(&a);
    return PyLong_FromLongLong((long long)mostly_focal);
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, "Decode object-streamed nested vectors (see baskets.decode)."},
    {"lookup", lookup, METH_VARARGS, "Cell index of each ID (see cell_table.CellTable.lookup)."},
    {"event_cells", event_cells, METH_VARARGS, "Each event's clustered cells (see event_cells.event_cells)."},
    {"cone_cells", cone_cells, METH_VARARGS, "Points within a radius of their query (see point_kernels)."},
    {"assemble", assemble, METH_VARARGS, "Write every output point (see point_kernels.assemble)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "raypf_kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit_raypf_kernels(void)
{
    return PyModule_Create(&module);
}
