// cuBLAS, loaded at run time: the wheel must import on machines with no CUDA
// at all, and linking libcublas statically would add hundreds of megabytes.
// The few types and entry points used are declared here, so building needs
// no cuBLAS headers either.
#pragma once
#include <cuda_runtime.h>

#include <string>

namespace nearly::gpu {

enum CublasOp { CUBLAS_OP_N_ = 0, CUBLAS_OP_T_ = 1 };
enum CublasCompute { COMPUTE_32F = 68, COMPUTE_32F_FAST_16F = 74, COMPUTE_32F_FAST_TF32 = 77 };
enum CudaDataType { R_32F = 0, R_16F = 2 };

struct Cublas {
    using Create = int (*)(void** handle);
    using Destroy = int (*)(void* handle);
    using SetStream = int (*)(void* handle, cudaStream_t stream);
    using GemmEx = int (*)(void* handle, int transa, int transb, int m, int n, int k, const void* alpha,
                           const void* A, int Atype, int lda, const void* B, int Btype, int ldb, const void* beta,
                           void* C, int Ctype, int ldc, int computeType, int algo);
    Create create = nullptr;
    Destroy destroy = nullptr;
    SetStream set_stream = nullptr;
    GemmEx gemm_ex = nullptr;
    std::string path;  // the library that was loaded
};

// Extra folders to look in (the Python layer adds the pip-installed NVIDIA
// wheels' lib folders); call before the first GPU search.
void add_cublas_search_dir(const std::string& dir);
// The loaded library; throws NotSupported, naming the places searched, when
// none is found.
const Cublas& cublas();

// C (rows x cols, row-major, float) = alpha * A (rows x d) . B (cols x d)^T,
// all row-major, A and B float32 or float16 (same type), accumulated in float32.
void gemm_abt(void* handle, int rows, int cols, int d, float alpha, const void* A, const void* B, bool fp16, bool tf32,
              float* C, int ldc);

}  // namespace nearly::gpu
