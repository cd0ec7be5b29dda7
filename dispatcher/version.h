/* The release this source tree builds. */
#ifndef PGDISPATCH_VERSION_H
#define PGDISPATCH_VERSION_H

#define PGDISPATCH_VERSION "0.1.0"

#endif
