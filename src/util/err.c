/*
 * Names and descriptions for esim_err, generated from the one list in
 * include/esim/err.h so that the enum and its texts cannot drift apart.
 */
#include "esim/err.h"

const char *esim_strerror(esim_err err)
{
	switch (err) {
	case ESIM_OK:
		return "success";
#define ESIM_ERR__TEXT_(name, value, text) \
	case name:                          \
		return text;
		ESIM_ERR_LIST(ESIM_ERR__TEXT_)
#undef ESIM_ERR__TEXT_
	case ESIM_E__LAST:
		break;
	}
	return "unknown error";
}

const char *esim_errname(esim_err err)
{
	switch (err) {
	case ESIM_OK:
		return "ESIM_OK";
#define ESIM_ERR__NAME_(name, value, text) \
	case name:                          \
		return #name;
		ESIM_ERR_LIST(ESIM_ERR__NAME_)
#undef ESIM_ERR__NAME_
	case ESIM_E__LAST:
		break;
	}
	return "ESIM_E_UNKNOWN";
}
