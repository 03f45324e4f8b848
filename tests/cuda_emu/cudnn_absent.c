/* cudnn_absent.c: cuDNN's handles are emulated (the CUDA backend makes one), its convolutions are not
 * (README.md here). The products library that the emulated attention test links (conv_cuda.c) refers to
 * the functions below; none is called by an emulated test, and each says so and fails
 * (CUDNN_STATUS_NOT_SUPPORTED) if one is. Defined without cudnn.h's prototypes: only their names matter
 * to the linker. */
#include <stdio.h>
#include <stdlib.h>

int cudnnCreate(void **handle);
int cudnnCreate(void **handle) { return (*handle = malloc(1)) ? 0 : 2; }
int cudnnDestroy(void *handle);
int cudnnDestroy(void *handle) { free(handle); return 0; }
int cudnnSetStream(void *handle, void *stream);
int cudnnSetStream(void *handle, void *stream) { (void)handle, (void)stream; return 0; }

#define NOT_EMULATED(name)                                                                                 \
    int name(void);                                                                                        \
    int name(void) {                                                                                       \
        fprintf(stderr, "cuda_emu: %s is not emulated\n", #name);                                          \
        return 9;                                                                                          \
    }
NOT_EMULATED(cudnnConvolutionBackwardData)
NOT_EMULATED(cudnnConvolutionBackwardFilter)
NOT_EMULATED(cudnnConvolutionForward)
NOT_EMULATED(cudnnCreateConvolutionDescriptor)
NOT_EMULATED(cudnnCreateFilterDescriptor)
NOT_EMULATED(cudnnCreateTensorDescriptor)
NOT_EMULATED(cudnnDestroyConvolutionDescriptor)
NOT_EMULATED(cudnnDestroyFilterDescriptor)
NOT_EMULATED(cudnnDestroyTensorDescriptor)
NOT_EMULATED(cudnnFindConvolutionBackwardDataAlgorithmEx)
NOT_EMULATED(cudnnFindConvolutionBackwardFilterAlgorithmEx)
NOT_EMULATED(cudnnFindConvolutionForwardAlgorithmEx)
NOT_EMULATED(cudnnGetConvolutionBackwardDataAlgorithm_v7)
NOT_EMULATED(cudnnGetConvolutionBackwardDataWorkspaceSize)
NOT_EMULATED(cudnnGetConvolutionBackwardFilterAlgorithm_v7)
NOT_EMULATED(cudnnGetConvolutionBackwardFilterWorkspaceSize)
NOT_EMULATED(cudnnGetConvolutionForwardAlgorithm_v7)
NOT_EMULATED(cudnnGetConvolutionForwardWorkspaceSize)
NOT_EMULATED(cudnnSetConvolution2dDescriptor)
NOT_EMULATED(cudnnSetConvolutionMathType)
NOT_EMULATED(cudnnSetFilter4dDescriptor)
NOT_EMULATED(cudnnSetTensor4dDescriptor)

const char *cudnnGetErrorString(int status);
const char *cudnnGetErrorString(int status) { return status ? "cuDNN is not emulated" : "success"; }
