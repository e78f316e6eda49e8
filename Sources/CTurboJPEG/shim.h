#ifndef FMODEL_CTURBOJPEG_SHIM_H
#define FMODEL_CTURBOJPEG_SHIM_H
#include <turbojpeg.h>
#endif
