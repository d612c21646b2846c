// SPDX-License-Identifier: GPL-2.0
/*
 * Pure parsers for libvirt domain and network XML, and MAC helpers.
 *
 * No libvirt, no I/O: everything here is unit-tested on odd inputs.
 *
 * Policy on sizes: a value longer than the fixed buffer it goes to is an
 * error (-1, "... too long"), never silently truncated -- a truncated tap
 * or bridge name would name another device. Values that are not used for
 * an interface's type (e.g. <source dev> of a vdpa NIC, a path) are not
 * copied, so they cannot fail the parse.
 *
 * Network forward modes (libvirt formatnetwork.html) map to enum tf_mode:
 *   no <forward>                       isolated
 *   <forward/> or mode='nat'           nat (libvirt's default mode)
 *   mode='route'                       route
 *   mode='open'                        open
 *   mode='bridge' with <bridge name=>  bridge  (taps on a host bridge)
 *   mode='bridge' without a bridge     direct  (macvtap pool)
 *   mode='private'|'vepa'|'passthrough' direct (macvtap)
 *   mode='hostdev' or anything else    other   (listed, not traced)
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "inventory.h"

static const int xml_opts = XML_PARSE_NONET | XML_PARSE_NOERROR |
			    XML_PARSE_NOWARNING;

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *tf_mode_name(enum tf_mode mode)
{
	switch (mode) {
	case TF_MODE_NAT:
		return "nat";
	case TF_MODE_ROUTE:
		return "route";
	case TF_MODE_OPEN:
		return "open";
	case TF_MODE_ISOLATED:
		return "isolated";
	case TF_MODE_BRIDGE:
		return "bridge";
	case TF_MODE_DIRECT:
		return "direct";
	case TF_MODE_USER:
		return "user";
	case TF_MODE_OTHER:
		return "other";
	case TF_MODE_UNKNOWN:
		break;
	}
	return "unknown";
}

/* ---- MAC addresses ---------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Strictly "hh:hh:hh:hh:hh:hh": libvirt always formats MACs that way, and
 * anything looser (single digits, '-' or '.') would hide a corrupt input.
 */
int tf_mac_parse(const char *str, uint8_t mac[6])
{
	uint8_t tmp[6];
	int i, hi, lo;

	if (!str || strlen(str) != TF_MAC_STR - 1)
		return -1;
	for (i = 0; i < 6; i++) {
		const char *p = str + 3 * i;

		hi = hexval(p[0]);
		lo = hexval(p[1]);
		if (hi < 0 || lo < 0)
			return -1;
		if (i < 5 && p[2] != ':')
			return -1;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, tmp, sizeof(tmp));
	return 0;
}

void tf_mac_format(const uint8_t mac[6], char out[TF_MAC_STR])
{
	snprintf(out, TF_MAC_STR, "%02x:%02x:%02x:%02x:%02x:%02x",
		 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/*
 * libvirt (virNetDevTapCreateInBridgePort, and the qemu driver for
 * type='ethernet') sets the tap MAC to the VM MAC with the first byte
 * 0xfe, or 0xfa if the VM MAC itself starts with 0xfe, so that tap and
 * guest never share an address.
 */
bool tf_tap_mac_matches(const uint8_t vm_mac[6], const uint8_t tap_mac[6])
{
	uint8_t first = vm_mac[0] == 0xfe ? 0xfa : 0xfe;

	return tap_mac[0] == first && !memcmp(vm_mac + 1, tap_mac + 1, 5);
}

/* ---- XML helpers ------------------------------------------------------ */

static xmlDocPtr read_doc(const char *xml, const char *what, char *err,
			  size_t errlen)
{
	xmlParserCtxtPtr ctxt;
	const xmlError *xerr;
	xmlDocPtr doc;
	size_t len, mlen;
	const char *msg;

	if (!xml || !*xml) {
		set_err(err, errlen, "empty %s XML", what);
		return NULL;
	}
	len = strlen(xml);
	if (len > INT_MAX) {
		set_err(err, errlen, "%s XML too large (%zu bytes)", what, len);
		return NULL;
	}
	xmlInitParser();
	ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		set_err(err, errlen, "out of memory parsing %s XML", what);
		return NULL;
	}
	doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL, xml_opts);
	if (!doc) {
		xerr = xmlCtxtGetLastError(ctxt);
		msg = xerr && xerr->message ? xerr->message : "parse error";
		/* libxml2 messages end in a newline: keep the report one line */
		mlen = strcspn(msg, "\r\n");
		set_err(err, errlen, "malformed %s XML (line %d): %.*s", what,
			xerr ? xerr->line : 0, (int)mlen, msg);
	} else if (doc->intSubset || doc->extSubset) {
		/*
		 * libvirt formats its XML itself, never with a DOCTYPE. The
		 * entities one declares are expanded by xmlNodeGetContent
		 * with no bound (libxml2's amplification limits guard only
		 * substitution while parsing): repeated references to a long
		 * entity turn a small document into a name of any size.
		 */
		set_err(err, errlen, "%s XML with a DOCTYPE (libvirt never writes one)",
			what);
		xmlFreeDoc(doc);
		doc = NULL;
	}
	xmlFreeParserCtxt(ctxt);
	return doc;
}

/* An element of libvirt's schema: they live in no namespace. */
static bool is_elem(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !n->ns &&
	       xmlStrEqual(n->name, BAD_CAST name);
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
	xmlNodePtr n;

	for (n = parent ? parent->children : NULL; n; n = n->next)
		if (is_elem(n, name))
			return n;
	return NULL;
}

/* Copy src to dst[dstsz]; -1 with a reason if it does not fit. */
static int copy_str(char *dst, size_t dstsz, const char *src, const char *what,
		    char *err, size_t errlen)
{
	size_t len = strlen(src);

	if (len >= dstsz) {
		set_err(err, errlen, "%s too long (%zu bytes, max %zu)", what,
			len, dstsz - 1);
		return -1;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

/* Attribute attr of n (n may be NULL) into dst; absent -> "". */
static int copy_prop(xmlNodePtr n, const char *attr, char *dst, size_t dstsz,
		     const char *what, char *err, size_t errlen)
{
	xmlChar *val;
	int ret;

	dst[0] = '\0';
	if (!n)
		return 0;
	val = xmlGetNoNsProp(n, BAD_CAST attr);
	if (!val)
		return 0;
	ret = copy_str(dst, dstsz, (const char *)val, what, err, errlen);
	xmlFree(val);
	return ret;
}

/* ---- domain XML ------------------------------------------------------- */

/*
 * libvirt accepts UUIDs with dashes anywhere and prints them canonically;
 * normalise to the canonical lower-case 8-4-4-4-12 form.
 */
static int parse_uuid(const char *s, char out[TF_UUID_STR])
{
	static const char hex[] = "0123456789abcdef";
	int ndig = 0, v;
	char *o = out;

	while (isspace((unsigned char)*s))
		s++;
	for (; *s && !isspace((unsigned char)*s); s++) {
		if (*s == '-')
			continue;
		v = hexval(*s);
		if (v < 0 || ndig == 32)
			return -1;
		if (ndig == 8 || ndig == 12 || ndig == 16 || ndig == 20)
			*o++ = '-';
		*o++ = hex[v];
		ndig++;
	}
	while (isspace((unsigned char)*s))
		s++;
	*o = '\0';
	return ndig == 32 && !*s ? 0 : -1;
}

static int parse_dom_identity(xmlNodePtr root, struct tf_domain_xml *out,
			      char *err, size_t errlen)
{
	xmlNodePtr n;
	xmlChar *txt;
	int ret = -1;

	n = child(root, "name");
	txt = n ? xmlNodeGetContent(n) : NULL;
	if (!txt || !*txt) {
		set_err(err, errlen, "domain XML without <name>");
		goto cleanup;
	}
	if (copy_str(out->name, sizeof(out->name), (const char *)txt,
		     "domain name", err, errlen))
		goto cleanup;
	xmlFree(txt);

	n = child(root, "uuid");
	txt = n ? xmlNodeGetContent(n) : NULL;
	if (!txt) {
		set_err(err, errlen, "domain '%s' without <uuid>", out->name);
		goto cleanup;
	}
	if (parse_uuid((const char *)txt, out->uuid)) {
		set_err(err, errlen, "domain '%s': bad uuid '%.40s'", out->name,
			(const char *)txt);
		goto cleanup;
	}
	ret = 0;
cleanup:
	xmlFree(txt);
	return ret;
}

static int parse_iface_mac(xmlNodePtr ifn, struct tf_dom_iface *ifc,
			   const char *where, char *err, size_t errlen)
{
	xmlNodePtr macn = child(ifn, "mac");
	xmlChar *val = NULL;
	uint8_t mac[6];
	int ret = 0;

	ifc->mac[0] = '\0';
	if (macn)
		val = xmlGetNoNsProp(macn, BAD_CAST "address");
	if (!val)
		goto cleanup;	/* libvirt always sets one; be lenient */
	if (tf_mac_parse((const char *)val, mac)) {
		set_err(err, errlen, "%s: bad MAC address '%.32s'", where,
			(const char *)val);
		ret = -1;
		goto cleanup;
	}
	tf_mac_format(mac, ifc->mac);
cleanup:
	xmlFree(val);
	return ret;
}

static int parse_iface(xmlNodePtr ifn, struct tf_dom_iface *ifc,
		       const char *dom, size_t idx, char *err, size_t errlen)
{
	char where[TF_NAME_MAX + 32];
	xmlNodePtr src = child(ifn, "source");
	char what[48];
	bool net, br;

	snprintf(where, sizeof(where), "domain '%s' interface %zu", dom, idx);
	snprintf(what, sizeof(what), "interface %zu type", idx);
	if (copy_prop(ifn, "type", ifc->type, sizeof(ifc->type), what, err,
		      errlen))
		return -1;
	if (!ifc->type[0]) {
		set_err(err, errlen, "%s: no type", where);
		return -1;
	}
	if (parse_iface_mac(ifn, ifc, where, err, errlen))
		return -1;

	snprintf(what, sizeof(what), "interface %zu target dev", idx);
	if (copy_prop(child(ifn, "target"), "dev", ifc->target,
		      sizeof(ifc->target), what, err, errlen))
		return -1;
	snprintf(what, sizeof(what), "interface %zu model type", idx);
	if (copy_prop(child(ifn, "model"), "type", ifc->model,
		      sizeof(ifc->model), what, err, errlen))
		return -1;

	/* Only the <source> attributes that name host devices for this type. */
	net = !strcmp(ifc->type, "network");
	br = !strcmp(ifc->type, "bridge");
	snprintf(what, sizeof(what), "interface %zu source network", idx);
	if (net && copy_prop(src, "network", ifc->source_network,
			     sizeof(ifc->source_network), what, err, errlen))
		return -1;
	/* A running domain's type='network' NIC shows its actual bridge too. */
	snprintf(what, sizeof(what), "interface %zu source bridge", idx);
	if ((net || br) && copy_prop(src, "bridge", ifc->source_bridge,
				     sizeof(ifc->source_bridge), what, err,
				     errlen))
		return -1;
	snprintf(what, sizeof(what), "interface %zu source dev", idx);
	if (!strcmp(ifc->type, "direct") &&
	    copy_prop(src, "dev", ifc->source_dev, sizeof(ifc->source_dev),
		      what, err, errlen))
		return -1;
	return 0;
}

static int parse_dom_ifaces(xmlNodePtr root, struct tf_domain_xml *out,
			    char *err, size_t errlen)
{
	xmlNodePtr devs = child(root, "devices");
	xmlNodePtr n;
	size_t count = 0;

	for (n = devs ? devs->children : NULL; n; n = n->next)
		count += is_elem(n, "interface");
	if (!count)
		return 0;
	out->ifaces = calloc(count, sizeof(*out->ifaces));
	if (!out->ifaces) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	for (n = devs->children; n; n = n->next) {
		if (!is_elem(n, "interface"))
			continue;
		if (parse_iface(n, &out->ifaces[out->n_ifaces], out->name,
				out->n_ifaces, err, errlen))
			return -1;
		out->n_ifaces++;
	}
	return 0;
}

int tf_domxml_parse(const char *xml, struct tf_domain_xml *out, char *err,
		    size_t errlen)
{
	xmlDocPtr doc;
	xmlNodePtr root;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	doc = read_doc(xml, "domain", err, errlen);
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!root || !is_elem(root, "domain")) {
		set_err(err, errlen, "not a domain XML (root <%s>)",
			root ? (const char *)root->name : "");
		goto cleanup;
	}
	if (parse_dom_identity(root, out, err, errlen))
		goto cleanup;
	if (parse_dom_ifaces(root, out, err, errlen))
		goto cleanup;
	ret = 0;
cleanup:
	xmlFreeDoc(doc);
	if (ret)
		tf_domxml_free(out);
	return ret;
}

void tf_domxml_free(struct tf_domain_xml *dom)
{
	if (!dom)
		return;
	free(dom->ifaces);
	dom->ifaces = NULL;
	dom->n_ifaces = 0;
}

/* ---- network XML ------------------------------------------------------ */

static enum tf_mode forward_mode(xmlNodePtr fwd, bool has_bridge)
{
	static const char *const macvtap[] = { "private", "vepa",
					       "passthrough" };
	enum tf_mode mode = TF_MODE_OTHER;
	xmlChar *m;
	size_t i;

	if (!fwd)
		return TF_MODE_ISOLATED;
	m = xmlGetNoNsProp(fwd, BAD_CAST "mode");
	if (!m || xmlStrEqual(m, BAD_CAST "nat"))
		mode = TF_MODE_NAT;
	else if (xmlStrEqual(m, BAD_CAST "route"))
		mode = TF_MODE_ROUTE;
	else if (xmlStrEqual(m, BAD_CAST "open"))
		mode = TF_MODE_OPEN;
	else if (xmlStrEqual(m, BAD_CAST "bridge"))
		mode = has_bridge ? TF_MODE_BRIDGE : TF_MODE_DIRECT;
	for (i = 0; m && i < sizeof(macvtap) / sizeof(macvtap[0]); i++)
		if (xmlStrEqual(m, BAD_CAST macvtap[i]))
			mode = TF_MODE_DIRECT;
	xmlFree(m);
	return mode;
}

int tf_netxml_parse(const char *xml, struct tf_network_xml *out, char *err,
		    size_t errlen)
{
	xmlDocPtr doc;
	xmlNodePtr root, n;
	xmlChar *txt = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	doc = read_doc(xml, "network", err, errlen);
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!root || !is_elem(root, "network")) {
		set_err(err, errlen, "not a network XML (root <%s>)",
			root ? (const char *)root->name : "");
		goto cleanup;
	}
	n = child(root, "name");
	txt = n ? xmlNodeGetContent(n) : NULL;
	if (!txt || !*txt) {
		set_err(err, errlen, "network XML without <name>");
		goto cleanup;
	}
	if (copy_str(out->name, sizeof(out->name), (const char *)txt,
		     "network name", err, errlen))
		goto cleanup;
	/* No <bridge name=> is legal: macvtap and hostdev pools have none. */
	if (copy_prop(child(root, "bridge"), "name", out->bridge,
		      sizeof(out->bridge), "network bridge name", err, errlen))
		goto cleanup;
	out->mode = forward_mode(child(root, "forward"), out->bridge[0]);
	ret = 0;
cleanup:
	xmlFree(txt);
	xmlFreeDoc(doc);
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}
