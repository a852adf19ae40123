/* Convenience header: all of base/. Layer 0 of docs/ARCHITECTURE.md. */
#pragma once

#include "base/buf.h"
#include "base/diag.h"
#include "base/dns.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/fileset.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/strmap.h"
#include "base/timeutil.h"
#include "base/vec.h"
