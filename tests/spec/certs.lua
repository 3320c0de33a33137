-- Certificates for the TLS specs, made with the `openssl` command in a new temporary folder:
--
--   local certs = dofile(".../certs.lua")()   -- makes them (about a second), returns the paths
--   dofile(".../certs.lua")(dir)              -- in `dir`, kept: made only if not there already
--   certs.ca, certs.ca_key       a CA ("luaevent-rs test CA")
--   certs.server, certs.key      a certificate for localhost and 127.0.0.1 signed by the CA, and its key
--   certs.chain                  the server certificate followed by the CA's
--   certs.self, certs.self_key   a self-signed certificate for localhost, and its key
--   certs.encrypted              the server key encrypted with the password certs.password
--   certs.other_key              a key that belongs to no certificate here
--   certs.dh                     Diffie-Hellman parameters (the ffdhe2048 group)
--   certs.capath                 a folder holding the CA, hashed as OpenSSL's capath wants
--   certs.garbage                a file that is no PEM at all
--   certs.dir                    the folder; certs.remove() deletes it
-- Elliptic-curve keys keep it fast. Loaded with dofile, so busted does not take it for a spec.

local function sh(command)
  local result = os.execute(command .. " >/dev/null 2>&1")
  assert(result == true or result == 0, "command failed: " .. command)
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  return text
end

return function(kept)
  local dir = kept
  if not dir then
    local pipe = assert(io.popen("mktemp -d"))
    dir = pipe:read("*l")
    pipe:close()
    assert(dir and dir ~= "", "mktemp -d failed")
  end
  local function path(name) return dir .. "/" .. name end
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  local made = kept and io.open(path("garbage.pem"))
  if made then made:close() end
  if kept and not made then sh("mkdir -p '" .. dir .. "'") end
  if not made then

  sh(("openssl req -x509 %s -keyout %s -out %s -days 3650 -subj '/CN=luaevent-rs test CA'"):format(ec, path("ca.key"), path("ca.pem")))
  sh(("openssl req %s -keyout %s -out %s -subj '/CN=localhost'"):format(ec, path("server.key"), path("server.csr")))
  write(path("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
  sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days 3650 -extfile %s"):format(
    path("server.csr"), path("ca.pem"), path("ca.key"), path("server.pem"), path("server.ext")))
  write(path("chain.pem"), read(path("server.pem")) .. read(path("ca.pem")))
  sh(("openssl req -x509 %s -keyout %s -out %s -days 3650 -subj '/CN=localhost'"):format(ec, path("self.key"), path("self.pem")))
  sh(("openssl pkey -in %s -aes256 -passout pass:correct-horse -out %s"):format(path("server.key"), path("encrypted.key")))
  sh(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s"):format(path("other.key")))
  sh(("openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out %s"):format(path("dh.pem")))
  sh(("mkdir %s && cp %s %s && openssl rehash %s"):format(path("capath"), path("ca.pem"), path("capath/ca.pem"), path("capath")))
  write(path("garbage.pem"), "this is not PEM\n") -- last: its presence says the folder is complete
  end

  return {
    dir = dir,
    ca = path("ca.pem"), ca_key = path("ca.key"),
    server = path("server.pem"), key = path("server.key"), chain = path("chain.pem"),
    self = path("self.pem"), self_key = path("self.key"),
    encrypted = path("encrypted.key"), password = "correct-horse",
    other_key = path("other.key"),
    dh = path("dh.pem"),
    capath = path("capath"),
    garbage = path("garbage.pem"),
    read = read,
    remove = function() os.execute("rm -rf '" .. dir .. "'") end,
  }
end
