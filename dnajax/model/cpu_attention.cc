// Fused scaled dot-product attention for the XLA CPU backend (dnajax's `model.attention="fused"`).
//
// FlashAttention's algorithm (Dao et al. 2022; the backward as in FlashAttention-2, Dao 2023) for short sequences
// on a CPU: one (batch, head) pair at a time, a block of query rows against every key, so a block's logits and
// probabilities stay in L1/L2. The forward saves the output, the softmax (max, sum) per query and, when the
// caller passes a buffer for them, the probabilities; the backward reads those, or recomputes them from the
// statistics. Pairs are spread over XLA's intra-op thread pool.
//
// Layout: q [B, T, N, H], k and v [B, S, N, H], key mask [B, S] (uint8, 1 = real key), all float32 and
// row-major; rotary tables cos/sin [L, H] or empty (no RoPE); scale multiplies q.k. A masked key's logit is -1e9 (not -inf), exactly as dnajax's einsum
// reference, so a query whose keys are all masked averages every value, as there.
// Built by dnajax/model/native.py with the host compiler (-O3 -march=native); XLA FFI headers from jaxlib.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr float kMasked = -1e9f;
constexpr int64_t kRows = 8;  // query rows per block: their logits and probabilities stay in cache

struct Shape {
  int64_t B, T, S, N, H;
};

// Runs fn(i) for i in [0, n) on the calling thread and the pool's threads; returns when all are done. Items are
// claimed from an atomic counter, so a pool task that starts late (or never before the caller finishes) takes
// nothing, and the caller never waits on work no thread has claimed.
template <typename F>
void ParallelFor(ffi::ThreadPool& pool, int64_t n, const F& fn) {
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex mu;
    std::condition_variable cv;
  };
  auto state = std::make_shared<State>();
  const F* body = &fn;
  auto work = [state, body, n]() {
    int64_t count = 0;
    for (int64_t i; (i = state->next.fetch_add(1)) < n; ++count) (*body)(i);
    if (count > 0 && state->done.fetch_add(count) + count == n) {
      std::lock_guard<std::mutex> lock(state->mu);
      state->cv.notify_all();
    }
  };
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), n) - 1;
  for (int64_t w = 0; w < helpers; ++w) pool.Schedule(decltype(work)(work));  // a copy per task
  work();
  std::unique_lock<std::mutex> lock(state->mu);
  state->cv.wait(lock, [&] { return state->done.load() == n; });
}

// Per-pair working copies are padded: rows to a multiple of kRows (zero queries, zero output gradients), keys
// and the head dimension to a multiple of kLanes (zero keys/values, probabilities forced to 0), so the inner loops
// below run on whole vectors (GCC/Clang vector extensions, as wide as the widest vector -march=native enables:
// 16 floats with AVX-512, 8 with AVX, 4 otherwise (SSE, NEON); wider vectors than the target has spill badly).
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
#elif defined(__AVX__)
constexpr int64_t kLanes = 8;
#else
constexpr int64_t kLanes = 4;
#endif
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

inline int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline Vec Load(const float* p) { Vec v; std::memcpy(&v, p, sizeof(Vec)); return v; }
inline void Store(float* p, Vec v) { std::memcpy(p, &v, sizeof(Vec)); }
typedef int32_t IVec __attribute__((vector_size(kLanes * sizeof(int32_t))));

// exp(x) for x <= 0 (every use here: a logit minus its row's max), 0 below -87 (float32 underflow). Cephes' expf:
// x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6 polynomial, 2^n put into the exponent bits; about 1 ulp.
// Inline and vectorised: glibc's vector expf is a call per vector and ran at ~1.5 cycles per value here.
inline Vec ExpNonPositive(Vec x) {
  const Vec too_small = x < -87.0f ? Vec{} + 1.0f : Vec{};
  x = x < -87.0f ? Vec{} - 87.0f : x;
  const IVec n = -__builtin_convertvector(x * -1.44269504088896341f + 0.5f, IVec);  // round(x / ln2); x <= 0
  const Vec nf = __builtin_convertvector(n, Vec);
  const Vec r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
  Vec y = r * 1.9875691500e-4f + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  IVec bits;
  std::memcpy(&bits, &y, sizeof(y));
  bits += (n << 23);
  std::memcpy(&y, &bits, sizeof(y));
  return too_small > 0.0f ? Vec{} : y;
}


struct Dims {
  int64_t T, S, H, Tp, Sp, Hp;  // true and padded sizes
};

// p[j] = exp(p[j] - shift) * mul for j < S; the padding lanes [S, Sp) set to 0. Returns the sum over j < S.
inline float ExpRow(float* p, const Dims& d, float shift, float mul) {
  Vec sum{};
  for (int64_t j = 0; j < d.Sp; j += kLanes) {
    Vec e = ExpNonPositive(Load(p + j) - shift) * mul;
    if (j + kLanes > d.S)
      for (int64_t l = 0; l < kLanes; ++l)
        if (j + l >= d.S) e[l] = 0.0f;
    Store(p + j, e);
    sum += e;
  }
  float total = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) total += sum[l];
  return total;
}

// Copies pair (b, n)'s [L, H] rows out of a [B, L, N, H] tensor into dst[Lp][Hp] (zero padded), times `mul`.
inline void Gather(const float* src, const Shape& s, int64_t L, int64_t Lp, int64_t Hp, int64_t b, int64_t n,
                   float mul, float* dst) {
  std::fill(dst, dst + Lp * Hp, 0.0f);
  for (int64_t t = 0; t < L; ++t) {
    const float* row = src + ((b * L + t) * s.N + n) * s.H;
    for (int64_t h = 0; h < s.H; ++h) dst[t * Hp + h] = row[h] * mul;
  }
}

inline void Scatter(const float* src, const Shape& s, int64_t L, int64_t Hp, int64_t b, int64_t n, float mul,
                    float* dst) {
  for (int64_t t = 0; t < L; ++t) {
    float* row = dst + ((b * L + t) * s.N + n) * s.H;
    for (int64_t h = 0; h < s.H; ++h) row[h] = src[t * Hp + h] * mul;
  }
}

// Rotary position embedding (rotate-half form, as dnajax.model.attention.rope) of rows [L][Hp] in place:
// x[t][h] <- x[t][h] cos[t][h] + x[t][(h - H/2) mod H] sin[t][h], with cos/sin [>= L][H] (sin signed, as there).
inline void Rotate(float* x, int64_t L, int64_t H, int64_t Hp, const float* cos, const float* sin) {
  const int64_t half = H / 2;
  thread_local std::vector<float> buffer;
  buffer.resize(H);
  float* tmp = buffer.data();
  for (int64_t t = 0; t < L; ++t) {
    float* row = x + t * Hp;
    const float *c = cos + t * H, *sn = sin + t * H;
    std::memcpy(tmp, row, H * sizeof(float));
#pragma omp simd
    for (int64_t h = 0; h < half; ++h) row[h] = tmp[h] * c[h] + tmp[h + half] * sn[h];
#pragma omp simd
    for (int64_t h = half; h < H; ++h) row[h] = tmp[h] * c[h] + tmp[h - half] * sn[h];
  }
}

// The rotation's transpose, for gradients: dx[t][g] = dy[t][g] cos[t][g] + dy[t][g'] sin[t][g'], g' = (g + H/2) % H.
inline void RotateBack(float* x, int64_t L, int64_t H, int64_t Hp, const float* cos, const float* sin) {
  const int64_t half = H / 2;
  thread_local std::vector<float> buffer;
  buffer.resize(H);
  float* tmp = buffer.data();
  for (int64_t t = 0; t < L; ++t) {
    float* row = x + t * Hp;
    const float *c = cos + t * H, *sn = sin + t * H;
    std::memcpy(tmp, row, H * sizeof(float));
#pragma omp simd
    for (int64_t g = 0; g < half; ++g) row[g] = tmp[g] * c[g] + tmp[g + half] * sn[g + half];
#pragma omp simd
    for (int64_t g = half; g < H; ++g) row[g] = tmp[g] * c[g] + tmp[g - half] * sn[g - half];
  }
}

// dst[h][j] = src[j][h] for src [Lp][Hp], dst [Hp][Lp].
inline void Transpose(const float* src, int64_t Lp, int64_t Hp, float* dst) {
  for (int64_t j = 0; j < Lp; ++j)
    for (int64_t h = 0; h < Hp; ++h) dst[h * Lp + j] = src[j * Hp + h];
}

// out[r][j] = sum_{h < H} a[r][h] * bt[h][j] for kRows rows: a [kRows][Hp], bt [Hp][Sp], out [kRows][Sp].
inline void Logits(const float* a, const float* bt, const Dims& d, float* out) {
  for (int64_t j0 = 0; j0 < d.Sp; j0 += kLanes) {
    Vec acc[kRows] = {};
    for (int64_t h = 0; h < d.H; ++h) {
      const Vec b = Load(bt + h * d.Sp + j0);
      for (int64_t r = 0; r < kRows; ++r) acc[r] += a[r * d.Hp + h] * b;
    }
    for (int64_t r = 0; r < kRows; ++r) Store(out + r * d.Sp + j0, acc[r]);
  }
}

// acc[r][:] += sum_{j < S} p[r][j] * m[j][:]: p [kRows][Sp], m [Sp][Hp], acc [kRows][Hp].
inline void RowsTimes(const float* p, const float* m, const Dims& d, float* acc) {
  for (int64_t h0 = 0; h0 < d.Hp; h0 += kLanes) {
    Vec a[kRows];
    for (int64_t r = 0; r < kRows; ++r) a[r] = Load(acc + r * d.Hp + h0);
    for (int64_t j = 0; j < d.S; ++j) {
      const Vec mj = Load(m + j * d.Hp + h0);
      for (int64_t r = 0; r < kRows; ++r) a[r] += p[r * d.Sp + j] * mj;
    }
    for (int64_t r = 0; r < kRows; ++r) Store(acc + r * d.Hp + h0, a[r]);
  }
}

// acc[j][:] += sum_r p[r][j] * m[r][:]: p [kRows][Sp], m [kRows][Hp], acc [Sp][Hp].
inline void TransposedTimes(const float* p, const float* m, const Dims& d, float* acc) {
  for (int64_t h0 = 0; h0 < d.Hp; h0 += kLanes) {
    Vec mr[kRows];
    for (int64_t r = 0; r < kRows; ++r) mr[r] = Load(m + r * d.Hp + h0);
    for (int64_t j = 0; j < d.S; ++j) {
      Vec a = Load(acc + j * d.Hp + h0);
      for (int64_t r = 0; r < kRows; ++r) a += p[r * d.Sp + j] * mr[r];
      Store(acc + j * d.Hp + h0, a);
    }
  }
}

// Logits of masked keys set to kMasked.
inline void ApplyMask(const uint8_t* mask, const Dims& d, float* logits) {
  for (int64_t r = 0; r < kRows; ++r) {
    float* l = logits + r * d.Sp;
#pragma omp simd
    for (int64_t j = 0; j < d.S; ++j) l[j] = mask[j] ? l[j] : kMasked;
  }
}

// Thread-local scratch, 64-byte aligned, grown as needed.
float* Scratch(int64_t floats) {
  thread_local std::unique_ptr<float, decltype(&std::free)> buf(nullptr, &std::free);
  thread_local int64_t size = 0;
  if (floats > size) {
    void* p = nullptr;
    if (posix_memalign(&p, 64, floats * sizeof(float)) != 0) std::abort();
    buf.reset(static_cast<float*>(p));
    size = floats;
  }
  return buf.get();
}

Dims DimsOf(const Shape& s) {
  return Dims{s.T, s.S, s.H, RoundUp(s.T, kRows), RoundUp(s.S, kLanes), RoundUp(s.H, kLanes)};
}

Shape ShapeOf(ffi::Buffer<ffi::F32>& q, ffi::Buffer<ffi::F32>& k) {
  auto qd = q.dimensions();
  auto kd = k.dimensions();
  return Shape{qd[0], qd[1], kd[1], qd[2], qd[3]};
}

ffi::Error CheckShapes(ffi::Buffer<ffi::F32>& q, ffi::Buffer<ffi::F32>& k, ffi::Buffer<ffi::F32>& v,
                       ffi::Buffer<ffi::U8>& mask) {
  auto qd = q.dimensions(), kd = k.dimensions(), vd = v.dimensions(), md = mask.dimensions();
  if (qd.size() != 4 || kd.size() != 4 || vd.size() != 4 || md.size() != 2 || kd[0] != qd[0] || kd[2] != qd[2] ||
      kd[3] != qd[3] || vd[0] != kd[0] || vd[1] != kd[1] || vd[2] != kd[2] || vd[3] != kd[3] || md[0] != qd[0] ||
      md[1] != kd[1])
    return ffi::Error::InvalidArgument("dnajax fused attention: expected q [B,T,N,H], k/v [B,S,N,H], mask [B,S]");
  return ffi::Error::Success();
}

// Rotary tables cos/sin [L, H] with L >= max(T, S), or empty (no rotation). Returns false for other shapes.
bool RopeTables(ffi::Buffer<ffi::F32>& cos, ffi::Buffer<ffi::F32>& sin, const Shape& s, const float** c,
                const float** sn) {
  *c = *sn = nullptr;
  if (cos.element_count() == 0 && sin.element_count() == 0) return true;
  auto cd = cos.dimensions(), sd = sin.dimensions();
  if (cd.size() != 2 || sd.size() != 2 || cd[0] != sd[0] || cd[1] != s.H || sd[1] != s.H || cd[0] < s.T ||
      cd[0] < s.S || s.H % 2)
    return false;
  *c = cos.typed_data();
  *sn = sin.typed_data();
  return true;
}

// Softmax statistics per query: the row max and the sum of exp(logit - max) over keys. Stored as two numbers,
// not their log-sum-exp: a fully masked row's max is -1e9, where adding log(sum) would be lost to rounding.
ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k, ffi::Buffer<ffi::F32> v,
                   ffi::Buffer<ffi::U8> mask, ffi::Buffer<ffi::F32> cos, ffi::Buffer<ffi::F32> sin, float scale,
                   ffi::ResultBuffer<ffi::F32> out, ffi::ResultBuffer<ffi::F32> stats,
                   ffi::ResultBuffer<ffi::F32> probs) {
  if (auto e = CheckShapes(q, k, v, mask); e.failure()) return e;
  const Shape s = ShapeOf(q, k);
  const float *rc, *rs;
  if (!RopeTables(cos, sin, s, &rc, &rs))
    return ffi::Error::InvalidArgument("dnajax fused attention: rotary tables must be [L >= T, S; H] (H even)");
  const Dims d = DimsOf(s);
  const float *qp = q.typed_data(), *kp = k.typed_data(), *vp = v.typed_data();
  const uint8_t* mp = mask.typed_data();
  float *op = out->typed_data(), *sp = stats->typed_data();
  // probs [B, N, T, S] (normalised) when the caller asked for them (else an empty buffer): the backward then
  // reads them instead of recomputing logits and exponentials.
  float* pp = probs->element_count() == static_cast<size_t>(s.B * s.N * s.T * s.S) ? probs->typed_data() : nullptr;
  auto pair = [&](int64_t i) {
    const int64_t b = i / s.N, n = i % s.N;
    float* qs = Scratch(2 * d.Tp * d.Hp + 2 * d.Sp * d.Hp + kRows * d.Sp);
    float *o = qs + d.Tp * d.Hp, *kt = o + d.Tp * d.Hp, *vs = kt + d.Sp * d.Hp, *p = vs + d.Sp * d.Hp;
    Gather(qp, s, d.T, d.Tp, d.Hp, b, n, scale, qs);
    Gather(kp, s, d.S, d.Sp, d.Hp, b, n, 1.0f, vs);  // k rows, transposed next
    if (rc != nullptr) {
      Rotate(qs, d.T, d.H, d.Hp, rc, rs);
      Rotate(vs, d.S, d.H, d.Hp, rc, rs);
    }
    Transpose(vs, d.Sp, d.Hp, kt);
    Gather(vp, s, d.S, d.Sp, d.Hp, b, n, 1.0f, vs);
    const uint8_t* m = mp + b * d.S;
    float* stat = sp + (b * s.N + n) * d.T * 2;
    std::fill(o, o + d.Tp * d.Hp, 0.0f);
    for (int64_t t0 = 0; t0 < d.Tp; t0 += kRows) {
      Logits(qs + t0 * d.Hp, kt, d, p);
      ApplyMask(m, d, p);
      float sums[kRows];
      for (int64_t r = 0; r < kRows; ++r) {
        float* pr = p + r * d.Sp;
        float mx = kMasked;
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < d.S; ++j) mx = std::max(mx, pr[j]);
        const float sum = ExpRow(pr, d, mx, 1.0f);
        sums[r] = sum;
        if (t0 + r < d.T) {
          stat[(t0 + r) * 2] = mx;
          stat[(t0 + r) * 2 + 1] = sum;
        }
      }
      RowsTimes(p, vs, d, o + t0 * d.Hp);
      for (int64_t r = 0; r < kRows; ++r) {
        const float inv = 1.0f / sums[r];
        for (int64_t h = 0; h < d.Hp; ++h) o[(t0 + r) * d.Hp + h] *= inv;
        if (pp != nullptr && t0 + r < d.T) {
          float* dst = pp + ((b * s.N + n) * d.T + t0 + r) * d.S;
          const float* pr = p + r * d.Sp;
#pragma omp simd
          for (int64_t j = 0; j < d.S; ++j) dst[j] = pr[j] * inv;
        }
      }
    }
    Scatter(o, s, d.T, d.Hp, b, n, 1.0f, op);
  };
  ParallelFor(pool, s.B * s.N, pair);
  return ffi::Error::Success();
}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> q, ffi::Buffer<ffi::F32> k,
                    ffi::Buffer<ffi::F32> v, ffi::Buffer<ffi::U8> mask, ffi::Buffer<ffi::F32> cos,
                    ffi::Buffer<ffi::F32> sin, ffi::Buffer<ffi::F32> out,
                    ffi::Buffer<ffi::F32> stats, ffi::Buffer<ffi::F32> probs, ffi::Buffer<ffi::F32> d_out, float scale,
                    ffi::ResultBuffer<ffi::F32> dq, ffi::ResultBuffer<ffi::F32> dk, ffi::ResultBuffer<ffi::F32> dv) {
  if (auto e = CheckShapes(q, k, v, mask); e.failure()) return e;
  const Shape s = ShapeOf(q, k);
  const float *rc, *rs;
  if (!RopeTables(cos, sin, s, &rc, &rs))
    return ffi::Error::InvalidArgument("dnajax fused attention: rotary tables must be [L >= T, S; H] (H even)");
  const Dims d = DimsOf(s);
  const float *qp = q.typed_data(), *kp = k.typed_data(), *vp = v.typed_data(), *op = out.typed_data(),
              *sp = stats.typed_data(), *dop = d_out.typed_data();
  const uint8_t* mp = mask.typed_data();
  float *dqp = dq->typed_data(), *dkp = dk->typed_data(), *dvp = dv->typed_data();
  const float* pp = probs.element_count() == static_cast<size_t>(s.B * s.N * s.T * s.S) ? probs.typed_data() : nullptr;
  auto pair = [&](int64_t i) {
    const int64_t b = i / s.N, n = i % s.N;
    const int64_t TH = d.Tp * d.Hp, SH = d.Sp * d.Hp;
    float* qs = Scratch(4 * TH + 6 * SH + 2 * kRows * d.Sp);
    float *dos = qs + TH, *os = dos + TH, *dqs = os + TH, *ks = dqs + TH, *kt = ks + SH, *vs = kt + SH,
          *vt = vs + SH, *dks = vt + SH, *dvs = dks + SH, *p = dvs + SH, *dp = p + kRows * d.Sp;
    Gather(qp, s, d.T, d.Tp, d.Hp, b, n, scale, qs);
    Gather(dop, s, d.T, d.Tp, d.Hp, b, n, 1.0f, dos);
    Gather(op, s, d.T, d.Tp, d.Hp, b, n, 1.0f, os);
    Gather(kp, s, d.S, d.Sp, d.Hp, b, n, 1.0f, ks);
    if (rc != nullptr) {
      Rotate(qs, d.T, d.H, d.Hp, rc, rs);
      Rotate(ks, d.S, d.H, d.Hp, rc, rs);
    }
    Transpose(ks, d.Sp, d.Hp, kt);
    Gather(vp, s, d.S, d.Sp, d.Hp, b, n, 1.0f, vs);
    Transpose(vs, d.Sp, d.Hp, vt);
    const uint8_t* m = mp + b * d.S;
    const float* stat = sp + (b * s.N + n) * d.T * 2;
    std::fill(dqs, dqs + TH, 0.0f);
    std::fill(dks, dks + SH, 0.0f);
    std::fill(dvs, dvs + SH, 0.0f);
    for (int64_t t0 = 0; t0 < d.Tp; t0 += kRows) {
      if (pp == nullptr) {
        Logits(qs + t0 * d.Hp, kt, d, p);
        ApplyMask(m, d, p);
      }
      float delta[kRows];
      for (int64_t r = 0; r < kRows; ++r) {
        float* pr = p + r * d.Sp;
        const bool real = t0 + r < d.T;
        if (pp != nullptr) {
          const float* src = pp + ((b * s.N + n) * d.T + t0 + r) * d.S;
          if (real) std::memcpy(pr, src, d.S * sizeof(float));
          else std::fill(pr, pr + d.S, 0.0f);
        } else {
          const float mx = real ? stat[(t0 + r) * 2] : 0.0f, inv = real ? 1.0f / stat[(t0 + r) * 2 + 1] : 0.0f;
          ExpRow(pr, d, mx, inv);
        }
        float dl = 0.0f;
        for (int64_t h = 0; h < d.H; ++h) dl += os[(t0 + r) * d.Hp + h] * dos[(t0 + r) * d.Hp + h];
        delta[r] = dl;
      }
      TransposedTimes(p, dos + t0 * d.Hp, d, dvs);  // dV += P^T dO
      Logits(dos + t0 * d.Hp, vt, d, dp);           // dP = dO V^T
      for (int64_t r = 0; r < kRows; ++r) {
        float *pr = p + r * d.Sp, *dpr = dp + r * d.Sp;
        const float dl = delta[r];
#pragma omp simd
        for (int64_t j = 0; j < d.S; ++j) dpr[j] = m[j] ? pr[j] * (dpr[j] - dl) : 0.0f;  // dS
      }
      RowsTimes(dp, ks, d, dqs + t0 * d.Hp);          // dQ = dS K (times scale at the end)
      TransposedTimes(dp, qs + t0 * d.Hp, d, dks);    // dK = dS^T (scale q)
    }
    if (rc != nullptr) {  // gradients of the rotated q, k -> of the inputs
      RotateBack(dqs, d.T, d.H, d.Hp, rc, rs);
      RotateBack(dks, d.S, d.H, d.Hp, rc, rs);
    }
    Scatter(dqs, s, d.T, d.Hp, b, n, scale, dqp);
    Scatter(dks, s, d.S, d.Hp, b, n, 1.0f, dkp);
    Scatter(dvs, s, d.S, d.Hp, b, n, 1.0f, dvp);
  };
  ParallelFor(pool, s.B * s.N, pair);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnajaxAttentionForward, Forward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::U8>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("scale")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(DnajaxAttentionBackward, Backward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::U8>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("scale")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
