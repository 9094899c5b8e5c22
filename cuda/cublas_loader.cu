#include "cublas_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "nearly/common.h"

namespace nearly::gpu {

namespace {

std::mutex g_mutex;
std::vector<std::string> g_dirs;
Cublas g_cublas;
bool g_loaded = false;

void* try_open(const std::string& name) {
    // cuBLAS needs cuBLASLt from its own folder; load it first where it is.
    auto slash = name.rfind('/');
    if (slash != std::string::npos) {
        std::string dir = name.substr(0, slash + 1);
        std::string lt = name.substr(slash + 1);
        lt.replace(0, std::string("libcublas").size(), "libcublasLt");
        dlopen((dir + lt).c_str(), RTLD_NOW | RTLD_GLOBAL);
    }
    return dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
}

}  // namespace

void add_cublas_search_dir(const std::string& dir) {
    std::lock_guard<std::mutex> g(g_mutex);
    g_dirs.push_back(dir);
}

const Cublas& cublas() {
    std::lock_guard<std::mutex> g(g_mutex);
    if (g_loaded) return g_cublas;
    std::vector<std::string> candidates;
    if (const char* p = std::getenv("NEARLY_CUBLAS")) candidates.push_back(p);
    const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    for (const char* n : names) candidates.push_back(n);  // the loader's own search path
    std::vector<std::string> dirs = g_dirs;
    for (const char* env : {"CUDA_HOME", "CUDA_PATH"})
        if (const char* p = std::getenv(env)) dirs.push_back(std::string(p) + "/lib64");
    dirs.push_back("/usr/local/cuda/lib64");
    dirs.push_back("/usr/local/cuda/targets/x86_64-linux/lib");
    for (const auto& d : dirs)
        for (const char* n : names) candidates.push_back(d + "/" + n);
    void* h = nullptr;
    std::string found;
    for (const auto& c : candidates) {
        if ((h = try_open(c))) {
            found = c;
            break;
        }
    }
    if (!h) {
        std::string msg = "GPU search needs cuBLAS (libcublas.so.13 or .12), which was not found; searched the "
                          "loader path and";
        for (const auto& d : dirs) msg += " " + d;
        msg += ". Install the CUDA toolkit or the nvidia-cublas wheel, or set NEARLY_CUBLAS to the library's path.";
        throw NotSupported(msg);
    }
    Cublas c;
    c.create = reinterpret_cast<Cublas::Create>(dlsym(h, "cublasCreate_v2"));
    c.destroy = reinterpret_cast<Cublas::Destroy>(dlsym(h, "cublasDestroy_v2"));
    c.set_stream = reinterpret_cast<Cublas::SetStream>(dlsym(h, "cublasSetStream_v2"));
    c.gemm_ex = reinterpret_cast<Cublas::GemmEx>(dlsym(h, "cublasGemmEx"));
    if (!c.create || !c.destroy || !c.set_stream || !c.gemm_ex)
        throw NotSupported("the cuBLAS library at " + found + " lacks cublasGemmEx / cublasCreate_v2");
    c.path = found;
    g_cublas = c;
    g_loaded = true;
    return g_cublas;
}

void gemm_abt(void* handle, int rows, int cols, int d, float alpha, const void* A, const void* B, bool fp16, bool tf32,
              float* C, int ldc) {
    // cuBLAS is column-major: the row-major (rows x cols) C is the
    // column-major (cols x rows) product B . A^T, with B and A read as
    // column-major (d x cols) and (d x rows) matrices.
    float beta = 0.f;
    int type = fp16 ? R_16F : R_32F;
    int compute = COMPUTE_32F;
    if (tf32 && !fp16) compute = COMPUTE_32F_FAST_TF32;
    int st = cublas().gemm_ex(handle, CUBLAS_OP_T_, CUBLAS_OP_N_, cols, rows, d, &alpha, B, type, d, A, type, d, &beta, C,
                              R_32F, ldc, compute, -1 /* CUBLAS_GEMM_DEFAULT */);
    if (st != 0) throw NotSupported("cublasGemmEx failed with status " + std::to_string(st));
}

}  // namespace nearly::gpu
