#ifndef FMODEL_COPENBLAS_SHIM_H
#define FMODEL_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
