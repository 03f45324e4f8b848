/* nccl_emu.cpp: NCCL for a group of one process, for the emulated tests (README.md here): a communicator of
 * one rank (more are refused: the emulation has one device), whose all-reduce and broadcast copy the send
 * buffer to the receive buffer, queued on the stream. Enough for the CUDA backend's data-parallel path in a
 * group of one (EDM2_GROUP_OF_ONE=1). */
#include <nccl.h>

#include <cstring>

#include "cuda_emu.h"

struct ncclComm {
    int nranks;
};

namespace {
size_t type_size(ncclDataType_t t) {
    switch (t) {
    case ncclInt8: case ncclUint8: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    default: return 8;
    }
}
ncclResult_t copy(const void *send, void *recv, size_t bytes, cudaStream_t stream) {
    if (send != recv) emu_enqueue(stream, [=]() { memmove(recv, send, bytes); });
    return ncclSuccess;
}
} // namespace

extern "C" {
ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    return ncclSuccess;
}
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId, int rank) {
    if (nranks != 1 || rank != 0) return ncclInvalidUsage;
    *comm = new ncclComm{1};
    return ncclSuccess;
}
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    delete comm;
    return ncclSuccess;
}
const char *ncclGetErrorString(ncclResult_t r) {
    return r == ncclSuccess ? "no error" : r == ncclInvalidUsage ? "the emulation has one rank" : "NCCL error (emulation)";
}
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t, ncclComm_t comm,
                           cudaStream_t stream) {
    return comm ? copy(send, recv, count * type_size(t), stream) : ncclInvalidArgument;
}
ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t t, int root, ncclComm_t comm,
                           cudaStream_t stream) {
    return comm && root == 0 ? copy(send, recv, count * type_size(t), stream) : ncclInvalidArgument;
}
}
