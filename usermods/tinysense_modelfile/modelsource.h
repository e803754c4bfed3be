// The MicroPython side of model loading shared by the bindings (emlearn_trees, emlearn_neighbors; any
// binding may use it): a model source is a bytes-like object or an open file, read whole. Kept apart from
// modelfile.h, which stays pure C for the cores.
#ifndef TINYSENSE_MODELSOURCE_H
#define TINYSENSE_MODELSOURCE_H

#include <stdbool.h>

#include "py/obj.h"

// Fill bufinfo with the bytes of *source: bytes, bytearray, array, str (all read in place), or an object
// with read() (an open file), whose result replaces *source so that it stays referenced while the caller
// uses bufinfo. text: whether text is a valid model (CSV): if not, a file opened in text mode raises
// TypeError asking for 'rb'. Anything else raises TypeError naming what a model source may be.
void modelfile_source_buffer(mp_obj_t *source, mp_buffer_info_t *bufinfo, bool text);

#endif
