/* print.c - the configuration printer (conf.h): the effective configuration
 * as an INI file that reads back the same, the list of every key, and the
 * names of the modes. Private helpers come from conf_int.h.
 */
#include <stddef.h>
#include <stdio.h>

#include "conf/conf_int.h"

static void print_section(const struct section_def *def, const void *obj, FILE *out)
{
	for (size_t i = 0; i < def->n_kws; i++)
		def->kws[i].type->print(&def->kws[i], obj, out);
}

void zg_conf_print(const struct zg_conf *conf, FILE *out)
{
	fprintf(out, "; effective configuration of %s\n", conf->path);
	for (size_t i = 0; i < N_SECTIONS; i++) {
		const struct section_def *def = &conf_sections[i];
		if (def->conf_off != NO_OFF) {
			fprintf(out, "\n[%s]\n", def->name);
			print_section(def, conf_cfield_of(conf, def->conf_off), out);
			continue;
		}
		for (unsigned k = 0; k < def->count(conf); k++) {
			/* name is the first member of every named section's struct */
			const char *name = def->elem(conf, k);
			fprintf(out, "\n[%s %s]\n", def->name, name);
			print_section(def, name, out);
		}
	}
}

void zg_conf_each_key(void (*fn)(const char *section, const char *key, void *arg), void *arg)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		for (size_t k = 0; k < conf_sections[i].n_kws; k++)
			fn(conf_sections[i].name, conf_sections[i].kws[k].name, arg);
}

const char *zg_mode_name(enum zg_mode m)
{
	switch (m) {
	case ZG_MODE_WRAP:
		return "wrap";
	case ZG_MODE_UNWRAP:
		return "unwrap";
	case ZG_MODE_BRIDGE:
		return "bridge";
	}
	return "unknown";
}

