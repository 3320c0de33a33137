-- core.tls.context: TLS contexts from LuaSec-shaped tables. Every parameter accepted and
-- refused as doc/api.md says, the exact text of each error (unreadable files, keys that do not
-- match, passwords), Prosody's and LuaSec's own tables unchanged, password and dhparam
-- functions (called once, their errors reported as strings), and collection. The certificates
-- are made by tests/spec/certs.lua with the `openssl` command.
local core = require "luaevent.core"
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""
local helpers = dofile(here .. "helpers.lua")
local make_certs = dofile(here .. "certs.lua")
local error_of, full_gc = helpers.error_of, helpers.full_gc

local context = core.tls and core.tls.context

-- The error core.tls.context raises for `params`.
local function refusal(params)
  local err = error_of(context, params)
  assert(err, "core.tls.context accepted the parameters")
  return err
end

local function accepts(params)
  local ok, result = pcall(context, params)
  assert(ok, result)
  assert.are.equal("userdata", type(result))
  return result
end

describe("core.tls.context #ours", function()
  local certs

  setup(function()
    certs = make_certs()
  end)

  teardown(function()
    if certs then certs.remove() end
  end)

  it("is core.tls.context", function()
    assert.are.equal("table", type(core.tls))
    assert.are.equal("function", type(core.tls.context))
  end)

  describe("makes", function()
    it("a client context from the mode alone", function()
      accepts { mode = "client" }
    end)

    it("a server context from a certificate and its key", function()
      accepts { mode = "server", certificate = certs.server, key = certs.key }
    end)

    it("a server context from a chain file", function()
      accepts { mode = "server", certificate = certs.chain, key = certs.key }
    end)

    it("a server context without a certificate (as LuaSec does, for SNI set-ups)", function()
      accepts { mode = "server" }
    end)

    it("a client context with a certificate of its own", function()
      accepts { mode = "client", certificate = certs.self, key = certs.self_key, cafile = certs.ca }
    end)

    it("with every parameter at once", function()
      accepts {
        mode = "server", protocol = "tlsv1_2", certificate = certs.server, key = certs.encrypted,
        password = certs.password, cafile = certs.ca, capath = certs.capath,
        verify = { "peer", "fail_if_no_peer_cert", "client_once" }, depth = 4,
        ciphers = "HIGH:!aNULL", ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
        curve = "P-256", curveslist = "X25519:P-256", dhparam = certs.dh, alpn = { "h2", "http/1.1" },
        options = { "no_ticket", "no_compression", "cipher_server_preference", "single_dh_use", "single_ecdh_use" },
        verifyext = { "lsec_continue", "lsec_ignore_purpose" },
      }
    end)

    it("from the table Prosody's certmanager gives LuaSec", function()
      -- What util.sslconfig's final() returns for the defaults plus a host's certificate and
      -- `protocol = "tlsv1_2+"` (turned into "sslv23" plus no_* options there).
      accepts {
        mode = "server", protocol = "sslv23", capath = certs.capath, depth = 9, verify = "none",
        certificate = certs.server, key = certs.key,
        password = function() error("Encrypted certificate requires 'ssl' 'password' to be set in config") end,
        options = { "cipher_server_preference", "no_ticket", "no_compression", "single_dh_use", "single_ecdh_use",
          "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" },
        verifyext = { "lsec_continue", "lsec_ignore_purpose" },
        curve = false,
        curveslist = "X25519:P-384:P-256:P-521",
        ciphers = "HIGH+kEECDH:HIGH+kEDH:HIGH:!PSK:!SRP:!3DES:!aNULL",
        dhparam = function() return certs.read(certs.dh) end,
      }
      -- Its s2s server asks for the peer's certificate.
      accepts { mode = "server", protocol = "sslv23", verify = { "peer", "client_once" }, capath = certs.capath,
        certificate = certs.server, key = certs.key, verifyext = { "lsec_continue", "lsec_ignore_purpose" } }
      -- Its client side.
      accepts { mode = "client", protocol = "sslv23", verify = "none", capath = certs.capath, depth = 9,
        options = { "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" }, verifyext = { "lsec_continue" } }
    end)

    it("from LuaSec's https defaults, which copas uses too", function()
      accepts { mode = "client", protocol = "any", options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1" }, verify = "none" }
    end)
  end)

  describe("takes", function()
    it("every protocol spelling it documents", function()
      for _, protocol in ipairs { "tlsv1_2", "tlsv1_3", "any", "sslv23", "tlsv1_2+", "tlsv1_3+" } do
        accepts { mode = "client", protocol = protocol }
      end
    end)

    it("verify as a string, a list or a set", function()
      for _, verify in ipairs { "none", "peer", { "none" }, { "peer", "fail_if_no_peer_cert" }, {},
        { peer = true, client_once = false } } do
        accepts { mode = "client", verify = verify }
        accepts { mode = "server", certificate = certs.server, key = certs.key, verify = verify }
      end
    end)

    it("every LuaSec option name OpenSSL 3 knows, alone and as a set", function()
      local names = { "all", "allow_client_renegotiation", "allow_no_dhe_kex", "allow_unsafe_legacy_renegotiation",
        "cipher_server_preference", "cisco_anyconnect", "cleanse_plaintext", "cookie_exchange", "cryptopro_tlsext_bug",
        "disable_tlsext_ca_names", "dont_insert_empty_fragments", "enable_ktls", "enable_middlebox_compat",
        "ephemeral_rsa", "ignore_unexpected_eof", "legacy_server_connect", "microsoft_big_sslv3_buffer",
        "microsoft_sess_id_bug", "msie_sslv2_rsa_padding", "netscape_ca_dn_bug", "netscape_challenge_bug",
        "netscape_demo_cipher_change_bug", "netscape_reuse_cipher_change_bug", "no_anti_replay", "no_compression",
        "no_encrypt_then_mac", "no_extended_master_secret", "no_query_mtu", "no_renegotiation",
        "no_session_resumption_on_renegotiation", "no_sslv2", "no_sslv3", "no_ticket", "no_tlsv1", "no_tlsv1_1",
        "no_tlsv1_2", "no_tlsv1_3", "pkcs1_check_1", "pkcs1_check_2", "prioritize_chacha", "safari_ecdhe_ecdsa_bug",
        "single_dh_use", "single_ecdh_use", "ssleay_080_client_dh_bug", "sslref2_reuse_cert_type_bug",
        "tls_block_padding_bug", "tls_d5_bug", "tls_rollback_bug", "tlsext_padding" }
      for _, name in ipairs(names) do
        accepts { mode = "client", options = name }
      end
      accepts { mode = "client", options = names }
      accepts { mode = "client", options = { no_ticket = true, no_compression = true, all = false } }
    end)

    it("ciphers, ciphersuites and curveslist as strings or lists", function()
      accepts { mode = "client", ciphers = { "HIGH", "!aNULL" }, ciphersuites = { "TLS_AES_128_GCM_SHA256" },
        curveslist = { "X25519", "P-384" } }
    end)

    it("alpn as a list or a single name, on both ends", function()
      accepts { mode = "client", alpn = "h2" }
      accepts { mode = "client", alpn = { "h2", "http/1.1" } }
      accepts { mode = "server", certificate = certs.server, key = certs.key, alpn = { "xmpp-client", "h2" } }
      accepts { mode = "server", certificate = certs.server, key = certs.key, alpn = string.rep("x", 255) }
    end)

    it("dhparam as a file or, as Prosody gives it, a function returning PEM text", function()
      accepts { mode = "server", certificate = certs.server, key = certs.key, dhparam = certs.dh }
      local args
      accepts { mode = "server", dhparam = function(...) args = { n = select("#", ...), ... } return certs.read(certs.dh) end }
      assert.are.same({ n = 2, false, 2048 }, args)
    end)

    it("false as absent, as LuaSec does", function()
      accepts { mode = "client", curve = false, ciphers = false, alpn = false, password = false, verify = false }
    end)

    it("a depth of 0 and up", function()
      accepts { mode = "client", depth = 0 }
      accepts { mode = "client", depth = 100 }
    end)
  end)

  describe("refuses", function()
    local function refuses(params, message)
      assert.are.equal(message, refusal(params))
    end

    it("anything but a table", function()
      assert.matches("bad argument #1 to '%w+' %(table expected, got no value%)$", error_of(function() return (context()) end))
      assert.matches("bad argument #1 to '%w+' %(table expected, got string%)$", error_of(function() return (context("client")) end))
    end)

    it("a parameter it does not support, by name", function()
      refuses({ mode = "client", dane = true }, "core.tls.context: unsupported parameter 'dane'")
      refuses({ mode = "client", certificates = {} }, "core.tls.context: unsupported parameter 'certificates'")
      refuses({ mode = "client", "peer" }, "core.tls.context: unsupported parameter [1] (parameters are named)")
      refuses({ mode = "client", [true] = 1 }, "core.tls.context: unsupported parameter (a boolean key)")
    end)

    it("a missing or unknown mode", function()
      refuses({}, "core.tls.context: 'mode' is required (\"client\" or \"server\")")
      refuses({ mode = "both" }, "core.tls.context: unsupported mode 'both' (\"client\" or \"server\")")
      refuses({ mode = 1 }, "core.tls.context: 'mode' must be a string, got number")
    end)

    it("protocols older than TLS 1.2 and unknown ones", function()
      for _, protocol in ipairs { "tlsv1", "tlsv1_1", "sslv3", "tlsv1+", "TLSv1.2", "" } do
        refuses({ mode = "client", protocol = protocol },
          "core.tls.context: unsupported protocol '" .. protocol .. "' (\"tlsv1_2\", \"tlsv1_3\" or \"any\")")
      end
    end)

    it("unknown names in verify, options and verifyext", function()
      refuses({ mode = "client", verify = "always" }, "core.tls.context: unsupported verify option 'always'")
      refuses({ mode = "client", verify = { "peer", "strict" } }, "core.tls.context: unsupported verify option 'strict'")
      refuses({ mode = "client", options = { "no_ticket", "no_dtlsv1" } }, "core.tls.context: unsupported option 'no_dtlsv1'")
      refuses({ mode = "client", options = { no_ssl_mask = true } }, "core.tls.context: unsupported option 'no_ssl_mask'")
      refuses({ mode = "client", verifyext = "lsec_strict" }, "core.tls.context: unsupported verifyext option 'lsec_strict'")
      refuses({ mode = "client", verify = { true } },
        "core.tls.context: 'verify' must be a name, a list of names or a set of names, got a boolean in the table")
    end)

    it("values of the wrong type, naming the parameter", function()
      refuses({ mode = "client", depth = "3" }, "core.tls.context: 'depth' must be an integer, got string")
      refuses({ mode = "client", depth = -1 }, "core.tls.context: 'depth' must be an integer >= 0")
      refuses({ mode = "client", depth = 1.5 }, "core.tls.context: 'depth' must be an integer >= 0")
      refuses({ mode = "client", cafile = 1 }, "core.tls.context: 'cafile' must be a string, got number")
      refuses({ mode = "client", password = 1 }, "core.tls.context: 'password' must be a string or a function, got number")
      refuses({ mode = "client", ciphers = { "HIGH", 1 } },
        "core.tls.context: 'ciphers' must be a string or a list of strings, got a number in the list")
      refuses({ mode = "client", dhparam = true }, "core.tls.context: 'dhparam' must be a file name or a function, got boolean")
      refuses({ mode = "client", certificate = "a\0b", key = certs.key }, "core.tls.context: 'certificate' contains a NUL byte")
      refuses({ mode = "client", cafile = string.rep("x", 5000) }, "core.tls.context: 'cafile' is too long")
    end)

    it("a certificate without its key and a key without its certificate", function()
      refuses({ mode = "server", certificate = certs.server }, "core.tls.context: 'certificate' needs its 'key'")
      refuses({ mode = "server", key = certs.key }, "core.tls.context: 'key' needs its 'certificate'")
    end)

    it("files that cannot be read, saying why", function()
      local missing = certs.dir .. "/missing.pem"
      refuses({ mode = "server", certificate = missing, key = certs.key },
        "core.tls.context: cannot load certificate '" .. missing .. "': No such file or directory")
      refuses({ mode = "server", certificate = certs.garbage, key = certs.key },
        "core.tls.context: cannot load certificate '" .. certs.garbage .. "': no start line")
      refuses({ mode = "server", certificate = certs.server, key = missing },
        "core.tls.context: cannot load key '" .. missing .. "': No such file or directory")
      refuses({ mode = "server", certificate = certs.server, key = certs.garbage },
        "core.tls.context: cannot load key '" .. certs.garbage .. "': not a PEM private key OpenSSL can read")
      refuses({ mode = "client", cafile = missing },
        "core.tls.context: cannot load CA file '" .. missing .. "': No such file or directory")
      refuses({ mode = "client", cafile = certs.garbage },
        "core.tls.context: cannot load CA file '" .. certs.garbage .. "': no certificate or crl found")
      refuses({ mode = "client", capath = missing },
        "core.tls.context: cannot use CA folder '" .. missing .. "': No such file or directory")
      refuses({ mode = "server", dhparam = missing },
        "core.tls.context: cannot load DH parameters '" .. missing .. "': No such file or directory")
      refuses({ mode = "server", dhparam = certs.garbage },
        "core.tls.context: cannot load DH parameters '" .. certs.garbage .. "': not PEM DH parameters OpenSSL can read")
    end)

    it("a key that does not match its certificate", function()
      refuses({ mode = "server", certificate = certs.server, key = certs.other_key },
        "core.tls.context: the key '" .. certs.other_key .. "' does not match the certificate '" .. certs.server .. "'")
      refuses({ mode = "server", certificate = certs.self, key = certs.key },
        "core.tls.context: the key '" .. certs.key .. "' does not match the certificate '" .. certs.self .. "'")
    end)

    it("ciphers, suites and curves OpenSSL does not know", function()
      refuses({ mode = "client", ciphers = "NOTACIPHER" }, "core.tls.context: cannot use ciphers 'NOTACIPHER': no cipher match")
      refuses({ mode = "client", ciphersuites = "TLS_NOPE" }, "core.tls.context: cannot use ciphersuites 'TLS_NOPE': no cipher match")
      assert.matches("^core%.tls%.context: unsupported curve in 'P%-999'", refusal { mode = "client", curve = "P-999" })
      assert.matches("^core%.tls%.context: unsupported curve in 'X25519:nope'",
        refusal { mode = "client", curveslist = { "X25519", "nope" } })
    end)

    it("ALPN lists that cannot be sent", function()
      refuses({ mode = "client", alpn = {} }, "core.tls.context: 'alpn' names no protocol")
      refuses({ mode = "client", alpn = "" }, "core.tls.context: ALPN protocol names are 1 to 255 bytes long")
      refuses({ mode = "client", alpn = string.rep("x", 256) }, "core.tls.context: ALPN protocol names are 1 to 255 bytes long")
      refuses({ mode = "client", alpn = "a\0b" }, "core.tls.context: ALPN protocol names cannot contain a NUL byte")
      refuses({ mode = "server", alpn = function() return "h2" end },
        "core.tls.context: 'alpn' as a function is not supported (give a list of protocol names)")
    end)
  end)

  describe("with an encrypted key", function()
    local function params(password)
      return { mode = "server", certificate = certs.server, key = certs.encrypted, password = password }
    end

    it("loads it with the right password, as a string", function()
      accepts(params(certs.password))
    end)

    it("loads it with a function returning the password, called once and without arguments", function()
      local calls, args = 0, nil
      accepts(params(function(...) calls = calls + 1 args = select("#", ...) return certs.password end))
      assert.are.equal(1, calls)
      assert.are.equal(0, args)
    end)

    it("never calls the password function for a key that is not encrypted", function()
      local called = false
      accepts { mode = "server", certificate = certs.server, key = certs.key, password = function() called = true end }
      assert.is_false(called)
    end)

    it("says so when no password is given, and never prompts on the terminal", function()
      assert.are.equal("core.tls.context: cannot load key '" .. certs.encrypted .. "': it is encrypted and no 'password' was given",
        refusal(params(nil)))
    end)

    it("says that a wrong password is wrong", function()
      for _, password in ipairs { "wrong", "", "correct-horse ", string.rep("x", 1024) } do
        assert.are.equal("core.tls.context: cannot load key '" .. certs.encrypted .. "': the password does not decrypt it",
          refusal(params(password)))
      end
    end)

    it("reports a password function that raises, as a string", function()
      assert.matches("^core%.tls%.context: the password function failed: .*no password here$",
        refusal(params(function() error("no password here") end)))
      assert.are.equal("core.tls.context: the password function failed: (error object is a table value)",
        refusal(params(function() error({}) end)))
    end)

    it("reports a password function that returns no string", function()
      assert.are.equal("core.tls.context: the password function returned nil, not a string", refusal(params(function() end)))
      assert.are.equal("core.tls.context: the password function returned number, not a string",
        refusal(params(function() return 42 end)))
    end)

    it("survives a password function that collects garbage, yields or makes contexts itself", function()
      accepts(params(function() full_gc() return certs.password end))
      assert.is_string(refusal(params(function() coroutine.yield() end)))
      accepts(params(function()
        accepts { mode = "server", certificate = certs.server, key = certs.encrypted, password = certs.password }
        return certs.password
      end))
    end)

    it("refuses a password too long for OpenSSL", function()
      assert.are.equal("core.tls.context: the password is longer than 1024 bytes", refusal(params(string.rep("p", 2000))))
    end)
  end)

  describe("dhparam functions", function()
    it("report their errors and wrong results", function()
      assert.matches("^core%.tls%.context: the dhparam function failed: .*no params$",
        refusal { mode = "server", dhparam = function() error("no params") end })
      assert.are.equal("core.tls.context: the dhparam function returned nil, not a string",
        refusal { mode = "server", dhparam = function() end })
      assert.are.equal("core.tls.context: cannot load the DH parameters 'dhparam' returned: not PEM DH parameters OpenSSL can read",
        refusal { mode = "server", dhparam = function() return "junk" end })
    end)
  end)

  describe("objects", function()
    it("are collected, and freeing one by hand twice is harmless", function()
      local weak = setmetatable({}, { __mode = "v" })
      weak[1] = accepts { mode = "server", certificate = certs.server, key = certs.key }
      weak[2] = accepts { mode = "client", cafile = certs.ca }
      full_gc()
      assert.is_nil(weak[1])
      assert.is_nil(weak[2])
      local ctx = accepts { mode = "client", cafile = certs.ca }
      local gc = getmetatable(ctx).__gc
      gc(ctx)
      gc(ctx)
      gc({})
      gc(nil)
      ctx = nil
      full_gc()
    end)

    it("free their OpenSSL memory when collected", function()
      local function rss_kb()
        local f = io.open("/proc/self/statm")
        if not f then return nil end
        local pages = tonumber(f:read("*l"):match("^%d+%s+(%d+)"))
        f:close()
        return pages * 4
      end
      local function churn()
        for _ = 1, 300 do
          accepts { mode = "server", certificate = certs.chain, key = certs.key, cafile = certs.ca, alpn = { "h2" } }
        end
        full_gc()
      end
      churn()
      local before = rss_kb()
      if not before then return end
      churn()
      churn()
      -- 600 leaked contexts with a certificate chain and a CA would take tens of megabytes.
      assert.is_true(rss_kb() - before < 4096, "memory grew by " .. (rss_kb() - before) .. " KB")
    end)
  end)
end)
