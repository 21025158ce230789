//+------------------------------------------------------------------+
//| HedgeBridge.mq4 - connects this MT4 terminal to hedge-agent.     |
//|                                                                  |
//| Speaks ea/PROTOCOL.md (v2) to the agent's WebSocket server on    |
//| 127.0.0.1:BridgePort. MQL4 has no sockets, so this EA imports    |
//| ws2_32.dll (allow DLL imports) and does the RFC 6455 client side |
//| itself. Everything runs from the millisecond timer: connect,     |
//| reconnect with backoff, read frames, ticks, account, heartbeats. |
//|                                                                  |
//| The steps have the same names as in the Python emulator          |
//| (hedge_agent/terminals/mt4/emulator.py): connect_bridge,         |
//| send_hello, on_welcome, on_timer, handle_frame, handle_watch,    |
//| handle_order, execute_open, execute_close, handle_query,         |
//| handle_get_positions, send_ticks, send_account, send_result,     |
//| dedup_get, dedup_put, schedule_reconnect, read_socket,           |
//| pump_frames, link_lost, link_failed, update_offset, to_utc.      |
//|                                                                  |
//| v2: both ends prove they hold the token (HMAC-SHA256 of fresh    |
//| nonces, PROTOCOL.md section 3); the token never crosses the      |
//| socket. Random bytes come from Windows' BCryptGenRandom.         |
//+------------------------------------------------------------------+
#property copyright "hedge-agent"
#property version   "2.00"
#property strict

input int    BridgePort         = 17001;                      // Bridge port of this terminal (127.0.0.1)
input string TokenFile          = "hedge-agent\\bridge.token"; // Token file in the common files folder
input int    TimerMs            = 20;                         // Timer period, ms
input int    MaxRetries         = 3;                          // Retries on 146/138/135/136
input int    RetryPauseMs       = 100;                        // Pause between retries, ms
input int    TradeContextWaitMs = 5000;                       // Longest wait for a free trade context, ms

#define EA_VERSION        "2.0.0"
#define PROTOCOL_VERSION  2
#define MAX_FRAME         1048576
#define STEP_TIMEOUT_MS   2000        // connect, upgrade, welcome: each step's deadline
#define BACKOFF_FIRST_MS  500
#define BACKOFF_MAX_MS    10000
#define BACKOFF_VERSION_MS 60000
#define STORE_KEEP        1000
#define STORE_COMPACT_AT  2000
#define OFFSET_STEP_S     900         // the broker's UTC offset is whole quarter hours
#define OFFSET_MIN_S      (-12 * 3600)
#define OFFSET_MAX_S      (14 * 3600)
#define UNKNOWN_CLOSE_WINDOW_S 90     // a pending/unknown close claims its ticket only if it closed this soon
#define OFFSETS_FILE      "HedgeBridge\\utc-offsets.csv"

//--- Winsock (MT4 is a 32-bit process: a SOCKET fits an int)
#define AF_INET           2
#define SOCK_STREAM       1
#define IPPROTO_TCP       6
#define TCP_NODELAY       1
#define FIONBIO           0x8004667E
#define INVALID_SOCKET    -1
#define WSAEWOULDBLOCK    10035
#define LOOPBACK_NBO      0x0100007F  // 127.0.0.1 in network byte order

struct sockaddr_in { short sin_family; ushort sin_port; uint sin_addr; uchar sin_zero[8]; };
struct fd_set      { uint fd_count; int fd_array[64]; };
struct timeval     { int tv_sec; int tv_usec; };

#import "ws2_32.dll"
int    WSAStartup(ushort version, uchar &data[]);
int    WSACleanup();
int    WSAGetLastError();
int    socket(int af, int type, int protocol);
int    connect(int s, sockaddr_in &name, int namelen);
int    send(int s, uchar &buf[], int len, int flags);
int    recv(int s, uchar &buf[], int len, int flags);
int    closesocket(int s);
int    ioctlsocket(int s, uint cmd, uint &argp);
int    setsockopt(int s, int level, int optname, int &optval, int optlen);
int    select(int nfds, fd_set &readfds, fd_set &writefds, fd_set &exceptfds, timeval &timeout);
ushort htons(ushort hostshort);
#import

//--- the OS's CSPRNG (Windows Vista+): nonces, the WebSocket key and frame masks; never MathRand
#import "bcrypt.dll"
int    BCryptGenRandom(int hAlgorithm, uchar &pbBuffer[], uint cbBuffer, uint dwFlags);
#import
#define BCRYPT_USE_SYSTEM_PREFERRED_RNG 2

// LINK_CHALLENGE: hello sent, waiting for the bridge's challenge; LINK_HELLO: auth sent, waiting for welcome
enum LinkState { LINK_DOWN, LINK_CONNECTING, LINK_UPGRADING, LINK_CHALLENGE, LINK_HELLO, LINK_READY };

//--- one line of the de-dup store (MQL4/Files/HedgeBridge/dedup-<login>.csv)
struct StoreEntry
  {
   string id;
   string op;       // open | close
   long   magic;
   long   target;   // close: the ticket to close
   string status;   // pending | done | rejected | unknown
   long   ticket;
   double price;
   double volume;
   long   time;     // UTC seconds
   int    code;
   string reason;
   long   at;       // UTC (TimeGMT) when the pending entry was written, just before the trade call
  };

//--- link
int       g_sock = INVALID_SOCKET;
LinkState g_state = LINK_DOWN;
ulong     g_deadline = 0;          // of the current connect/upgrade/welcome step
ulong     g_next_attempt = 0;
int       g_backoff = BACKOFF_FIRST_MS;
string    g_last_why = "";
string    g_token = "";            // read on every attempt; only ever used as the HMAC key
string    g_nonce = "";            // this connection's EA nonce (hex)
string    g_ws_key = "";
uchar     g_frag[];                // a fragmented message being reassembled
int       g_frag_len = 0;
int       g_frag_op = -1;          // its opcode; -1: none in progress
bool      g_auth_alerted = false;
uchar     g_rx[];
int       g_rx_len = 0;
string    g_instance = "";
string    g_session = "";
double    g_hb_s = 1.0;
double    g_dead_s = 5.0;
ulong     g_last_rx = 0;
ulong     g_last_hb = 0;
bool      g_peer_gone = false;     // the agent's FIN or reset came, or a send failed: see link_lost()
string    g_peer_why = "";
//--- streaming
string    g_watch[];
double    g_last_bid[];
double    g_last_ask[];
long      g_offset = 0;            // broker server time - UTC, seconds (the newest measured)
bool      g_offset_known = false;
datetime  g_tc_seen = 0;           // the newest TimeCurrent() looked at
long      g_off_from[];            // the offset log: UTC time from which g_off_val[i] holds, oldest first
long      g_off_val[];
double    g_acc_last[6];           // balance, credit, trade_allowed, connected, equity, margin
ulong     g_acc_sent = 0;
bool      g_acc_known = false;
//--- de-dup store
StoreEntry g_store[];
int        g_store_n = 0;
int        g_store_lines = 0;
long       g_store_login = 0;      // the login the store file is named for; 0: not known yet (in memory only)
uchar      g_pool[32];             // fallback random pool (SHA-256 chain) if BCryptGenRandom fails
ulong      g_pool_n = 0;

ulong now_ms() { return GetMicrosecondCount() / 1000; }

//--- field by field: StoreEntry holds strings, so it is not a "simple" structure
void store_copy(StoreEntry &dst, const StoreEntry &src)
  {
   dst.id = src.id;
   dst.op = src.op;
   dst.magic = src.magic;
   dst.target = src.target;
   dst.status = src.status;
   dst.ticket = src.ticket;
   dst.price = src.price;
   dst.volume = src.volume;
   dst.time = src.time;
   dst.code = src.code;
   dst.reason = src.reason;
   dst.at = src.at;
  }

//+------------------------------------------------------------------+
int OnInit()
  {
   if(!TerminalInfoInteger(TERMINAL_DLLS_ALLOWED) || !MQLInfoInteger(MQL_DLLS_ALLOWED))
     {
      Alert("HedgeBridge: allow DLL imports (Tools > Options > Expert Advisors, and the EA's Common tab)");
      return INIT_FAILED;
     }
   uchar wsa[512];
   if(WSAStartup(0x202, wsa) != 0)
     {
      Alert("HedgeBridge: WSAStartup failed");
      return INIT_FAILED;
     }
   g_instance = StringSubstr(random_hex(8), 0, 12);
   dedup_open();                   // names the store only once AccountNumber() is known (else at a later round)
   offsets_load();
   update_offset(true);            // valid before the first timer round (a resume query right after a restart)
   g_next_attempt = 0;             // connect at the first timer event
   if(!EventSetMillisecondTimer(TimerMs))
     {
      Alert("HedgeBridge: cannot start the timer");
      return INIT_FAILED;
     }
   Print("HedgeBridge ", EA_VERSION, ": connecting to 127.0.0.1:", BridgePort, " (instance ", g_instance, ")");
   return INIT_SUCCEEDED;
  }

void OnDeinit(const int reason)
  {
   EventKillTimer();
   if(g_state == LINK_READY)
      ws_send_close(1000, "EA stopped");
   close_socket();
   WSACleanup();
  }

void OnTick()
  {
   if(g_state == LINK_READY)
      send_ticks();                // lower latency for the chart symbol; the timer covers all symbols
  }

void OnTimer() { on_timer(); }

//+------------------------------------------------------------------+
//| the timer: drives the link state machine and the streams          |
//+------------------------------------------------------------------+
void on_timer()
  {
   ulong now = now_ms();
   dedup_open();
   update_offset(false);
   if(g_state == LINK_DOWN)
     {
      if(now >= g_next_attempt)
         connect_bridge();
      return;
     }
   if(g_state == LINK_CONNECTING)
      poll_connect();
   else if(g_state == LINK_UPGRADING)
      poll_upgrade();
   else
      pump_frames();               // LINK_CHALLENGE, LINK_HELLO and LINK_READY
   if(g_state != LINK_DOWN && g_state != LINK_READY && now_ms() > g_deadline)
     {
      link_failed(StringFormat("no progress in %d ms (state %d)", STEP_TIMEOUT_MS, g_state), 0);
      return;
     }
   if(g_state != LINK_READY)
      return;
   // what queued up while a long OrderSend blocked this thread (the agent's heartbeats) counts as life
   // before the dead-peer check below; it is handled at the next round, in order
   if(!read_socket())
      return;
   if(g_peer_gone)
      return;                      // what came with the agent's FIN is handled at the next round, then the link fails
   send_ticks();
   send_account(false);
   now = now_ms();
   if(now - g_last_hb >= (ulong)(g_hb_s * 1000))
     {
      g_last_hb = now;
      ws_send_text("{\"type\":\"hb\"}");
     }
   // judged after the second read_socket() (a long OrderSend is not a dead agent)
   if(g_state == LINK_READY && !g_peer_gone && now - g_last_rx > (ulong)(g_dead_s * 1000))
     {
      ws_send_close(4007, "dead peer: no frame from the agent");
      link_failed("dead peer: no frame from the agent", 4007);
     }
  }

//+------------------------------------------------------------------+
//| connect, upgrade, hello, welcome                                  |
//+------------------------------------------------------------------+
void connect_bridge()
  {
   g_token = read_token();
   if(g_token == "")
     {
      link_failed("token file '" + TokenFile + "' not found in the common files folder: start hedge-agent once", 0);
      return;
     }
   g_sock = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
   if(g_sock == INVALID_SOCKET)
     {
      link_failed(StringFormat("socket() failed: %d", WSAGetLastError()), 0);
      return;
     }
   uint nonblocking = 1;
   ioctlsocket(g_sock, FIONBIO, nonblocking);
   int one = 1;
   setsockopt(g_sock, IPPROTO_TCP, TCP_NODELAY, one, 4);
   sockaddr_in addr;
   addr.sin_family = AF_INET;
   addr.sin_port = htons((ushort)BridgePort);
   addr.sin_addr = LOOPBACK_NBO;
   for(int z = 0; z < 8; z++)
      addr.sin_zero[z] = 0;
   g_deadline = now_ms() + STEP_TIMEOUT_MS;
   if(connect(g_sock, addr, 16) == 0)
     {
      send_upgrade();
      return;
     }
   int err = WSAGetLastError();
   if(err != WSAEWOULDBLOCK)
     {
      link_failed(StringFormat("connect() failed: %d", err), 0);
      return;
     }
   g_state = LINK_CONNECTING;
  }

void poll_connect()
  {
   fd_set none, writable, failed;
   none.fd_count = 0;
   writable.fd_count = 1;
   writable.fd_array[0] = g_sock;
   failed.fd_count = 1;
   failed.fd_array[0] = g_sock;
   timeval zero;
   zero.tv_sec = 0;
   zero.tv_usec = 0;
   int n = select(0, none, writable, failed, zero);
   if(n < 0)
      link_failed(StringFormat("select() failed: %d", WSAGetLastError()), 0);
   else if(n > 0 && failed.fd_count > 0)
      link_failed("connection refused: is hedge-agent running?", 0);
   else if(n > 0 && writable.fd_count > 0)
      send_upgrade();
  }

void send_upgrade()
  {
   uchar nonce[], none[], b64[];
   random_bytes(nonce, 16);
   CryptEncode(CRYPT_BASE64, nonce, none, b64);
   g_ws_key = CharArrayToString(b64, 0, ArraySize(b64), CP_ACP);
   string req = "GET / HTTP/1.1\r\n"
                "Host: 127.0.0.1:" + IntegerToString(BridgePort) + "\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                "Sec-WebSocket-Key: " + g_ws_key + "\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "User-Agent: HedgeBridge/" + EA_VERSION + "\r\n\r\n";
   uchar bytes[];
   int n = StringToCharArray(req, bytes, 0, WHOLE_ARRAY, CP_ACP) - 1;
   g_rx_len = 0;
   g_frag_len = 0;
   g_frag_op = -1;
   g_peer_gone = false;
   g_peer_why = "";
   g_state = LINK_UPGRADING;
   g_deadline = now_ms() + STEP_TIMEOUT_MS;
   if(!send_all(bytes, n))
      link_failed("could not send the WebSocket upgrade", 0);
  }

void poll_upgrade()
  {
   if(!read_socket())
      return;
   if(g_peer_gone)
     {
      string why = g_peer_why;     // a copy: link_failed clears g_peer_why
      link_failed(why, 0);         // nothing before the welcome counts
      return;
     }
   string head = CharArrayToString(g_rx, 0, g_rx_len, CP_ACP);
   int end = StringFind(head, "\r\n\r\n");
   if(end < 0)
     {
      if(g_rx_len > 8192)
         link_failed("HTTP answer too long", 0);
      return;
     }
   if(StringFind(head, "HTTP/1.1 101") != 0)
     {
      link_failed("the bridge refused the upgrade: " + StringSubstr(head, 0, StringFind(head, "\r\n")), 0);
      return;
     }
   string accept = header_value(StringSubstr(head, 0, end), "sec-websocket-accept");
   if(accept != expected_accept(g_ws_key))
     {
      link_failed("bad Sec-WebSocket-Accept from the bridge", 0);
      return;
     }
   rx_consume(end + 4);           // anything after the header is already frames
   send_hello();
  }

//--- v2: the first frame says nothing but the version and a fresh nonce (an impostor learns nothing)
void send_hello()
  {
   g_nonce = random_hex(32);
   g_state = LINK_CHALLENGE;
   g_deadline = now_ms() + STEP_TIMEOUT_MS;
   ws_send_text("{\"type\":\"hello\",\"v\":" + IntegerToString(PROTOCOL_VERSION) + ",\"nonce\":\"" + g_nonce + "\"}");
  }

//--- the bridge's challenge: check its proof before saying anything else; then prove ours
void on_challenge(const string &json)
  {
   if(g_state != LINK_CHALLENGE || g_peer_gone)
      return;                      // no handshake step on a dead link: pump_frames fails it
   string bridge_nonce = json_get_string(json, "nonce");
   string presented = json_get_string(json, "proof");
   bool ok = is_hex64(bridge_nonce) && bridge_nonce != g_nonce &&
             presented == hmac_sha256_hex(g_token, "HB2|bridge|" + g_nonce + "|" + bridge_nonce);
   if(!ok)
     {
      string why = "the program on 127.0.0.1:" + IntegerToString(BridgePort) +
                   " failed the challenge: it is not hedge-agent, or it uses another token; not connecting";
      if(!g_auth_alerted)
         Alert("HedgeBridge: ", why);
      g_auth_alerted = true;
      ws_send_close(4001, "the agent failed the challenge");
      link_failed(why, 4001);
      return;
     }
   string session = (g_session == "") ? "null" : jstr(g_session);
   string auth = "{\"type\":\"auth\",\"proof\":\"" + hmac_sha256_hex(g_token, "HB2|ea|" + g_nonce + "|" + bridge_nonce) + "\"" +
                 ",\"terminal\":\"MT4\",\"build\":" + IntegerToString(TerminalInfoInteger(TERMINAL_BUILD)) +
                 ",\"login\":" + IntegerToString(AccountNumber()) +
                 ",\"server\":" + jstr(AccountServer()) +
                 ",\"company\":" + jstr(AccountCompany()) +
                 ",\"ea_version\":\"" + EA_VERSION + "\",\"instance\":" + jstr(g_instance) +
                 ",\"session\":" + session + "}";
   g_state = LINK_HELLO;
   g_deadline = now_ms() + STEP_TIMEOUT_MS;
   ws_send_text(auth);
  }

void on_welcome(const string &json)
  {
   if(g_state != LINK_HELLO)
      return;
   g_session = json_get_string(json, "session");
   g_hb_s = json_get_double(json, "heartbeat_s", 1.0);
   g_dead_s = json_get_double(json, "dead_after_s", 5.0);
   g_state = LINK_READY;
   g_auth_alerted = false;
   g_backoff = BACKOFF_FIRST_MS;
   g_last_rx = now_ms();
   g_last_hb = 0;
   g_acc_known = false;
   ArrayInitialize(g_last_bid, 0);
   ArrayInitialize(g_last_ask, 0);
   log_change("connected to hedge-agent on 127.0.0.1:" + IntegerToString(BridgePort) + " (session " + g_session + ")");
   send_account(true);
  }

//+------------------------------------------------------------------+
//| failures and backoff                                              |
//+------------------------------------------------------------------+
void link_failed(const string why, int close_code)
  {
   close_socket();
   g_state = LINK_DOWN;
   g_rx_len = 0;                   // a partial frame (and anything not handled) goes with the socket
   g_frag_len = 0;
   g_frag_op = -1;
   g_peer_gone = false;
   g_peer_why = "";
   int delay = g_backoff;
   if(close_code == 4004)
     {
      if(g_last_why != why)
         Alert("HedgeBridge: ", why);
      delay = BACKOFF_VERSION_MS;
     }
   log_change(why);
   schedule_reconnect(delay);
   g_backoff = MathMin(g_backoff * 2, BACKOFF_MAX_MS);
  }

//--- the agent is gone: recv() returned 0 (its FIN) or failed (a reset), or a send failed. Nothing more
//--- will be received or can be sent, but the bytes received before are valid data: pump_frames handles
//--- every complete frame of g_rx first (an order is executed and stored; its answers are not sent) and
//--- then calls link_failed (PROTOCOL.md section 7, "link loss")
void link_lost(const string why)
  {
   if(!g_peer_gone)
      g_peer_why = why;
   g_peer_gone = true;
  }

void schedule_reconnect(int delay_ms)
  {
   // jitter: 50-100 % of the delay, so two EAs do not retry in step
   uchar r[];
   random_bytes(r, 2);
   g_next_attempt = now_ms() + (ulong)(delay_ms * (0.5 + 0.5 * ((r[0] << 8) | r[1]) / 65535.0));
  }

void close_socket()
  {
   if(g_sock != INVALID_SOCKET)
      closesocket(g_sock);
   g_sock = INVALID_SOCKET;
  }

void log_change(const string why)
  {
   if(why != g_last_why)           // log state changes, not repeats
      Print("HedgeBridge: ", why);
   g_last_why = why;
  }

//+------------------------------------------------------------------+
//| socket I/O                                                        |
//+------------------------------------------------------------------+
//--- append what the socket has to g_rx; false when the link failed. recv() returns 0 (FIN) only after
//--- every byte sent before it: the agent is gone (link_lost), and what g_rx holds is still handled.
//--- Also called once the agent is gone (a failed send): what the OS still holds is read all the same
bool read_socket()
  {
   uchar buf[];
   ArrayResize(buf, 65536);
   while(true)
     {
      int n = recv(g_sock, buf, 65536, 0);
      if(n > 0)
        {
         if(g_rx_len + n > MAX_FRAME + 16)
           {
            link_failed("frame from the agent over the size cap", 1009);
            return false;
           }
         ArrayResize(g_rx, g_rx_len + n, 65536);
         ArrayCopy(g_rx, buf, g_rx_len, 0, n);
         g_rx_len += n;
         g_last_rx = now_ms();     // any byte from the agent is a sign of life
         continue;
        }
      if(n == 0)
        {
         link_lost("the agent closed the connection");
         return true;
        }
      int err = WSAGetLastError();
      if(err == WSAEWOULDBLOCK)
         return true;
      link_lost(StringFormat("recv() failed: %d", err));   // a reset: what was read before still counts
      return true;
     }
   return true;
  }

bool send_all(uchar &data[], int len)
  {
   int sent = 0;
   ulong deadline = now_ms() + STEP_TIMEOUT_MS;
   uchar chunk[];
   while(sent < len)
     {
      ArrayResize(chunk, len - sent);
      ArrayCopy(chunk, data, 0, sent, len - sent);
      int n = send(g_sock, chunk, len - sent, 0);
      if(n > 0)
        {
         sent += n;
         continue;
        }
      if(WSAGetLastError() != WSAEWOULDBLOCK || now_ms() > deadline)
         return false;
      Sleep(1);
     }
   return true;
  }

void rx_consume(int count)
  {
   if(count >= g_rx_len)
     {
      g_rx_len = 0;
      return;
     }
   uchar rest[];
   ArrayResize(rest, g_rx_len - count);
   ArrayCopy(rest, g_rx, 0, count, g_rx_len - count);
   ArrayCopy(g_rx, rest, 0, 0, g_rx_len - count);
   g_rx_len -= count;
  }

//+------------------------------------------------------------------+
//| WebSocket frames (RFC 6455, client side: masked)                  |
//+------------------------------------------------------------------+
void ws_send_frame(int opcode, uchar &payload[], int len)
  {
   if(g_sock == INVALID_SOCKET || g_peer_gone)
      return;                      // nothing can be sent on a dead link
   int head = (len < 126) ? 2 : (len < 65536 ? 4 : 10);
   uchar frame[];
   ArrayResize(frame, head + 4 + len);
   frame[0] = (uchar)(0x80 | opcode);
   if(len < 126)
      frame[1] = (uchar)(0x80 | len);
   else if(len < 65536)
     {
      frame[1] = (uchar)(0x80 | 126);
      frame[2] = (uchar)(len >> 8);
      frame[3] = (uchar)(len & 0xFF);
     }
   else
     {
      frame[1] = (uchar)(0x80 | 127);
      for(int b = 0; b < 8; b++)
         frame[2 + b] = (uchar)((b < 4) ? 0 : ((len >> (8 * (7 - b))) & 0xFF));
     }
   uchar mask[];
   random_bytes(mask, 4);          // RFC 6455 10.3: masks must not be predictable
   for(int m = 0; m < 4; m++)
      frame[head + m] = mask[m];
   for(int i = 0; i < len; i++)
      frame[head + 4 + i] = (uchar)(payload[i] ^ mask[i % 4]);
   if(!send_all(frame, head + 4 + len))
      link_lost("send failed");    // not link_failed: the complete frames received are still handled
  }

void ws_send_text(const string text)
  {
   uchar bytes[];
   int n = StringToCharArray(text, bytes, 0, WHOLE_ARRAY, CP_UTF8) - 1;  // without the trailing 0
   if(n > MAX_FRAME)
     {
      Print("HedgeBridge: frame over the size cap not sent (", n, " bytes)");
      return;
     }
   ws_send_frame(0x1, bytes, MathMax(n, 0));
  }

void ws_send_close(int code, const string reason)
  {
   if(code == 1005 || code == 1006 || code == 1015 || code < 1000)
      code = 1000;                 // reserved codes are never sent on the wire (RFC 6455 7.4.1)
   uchar text[], payload[];
   int n = StringToCharArray(reason, text, 0, WHOLE_ARRAY, CP_UTF8) - 1;
   n = MathMax(0, MathMin(n, 123));
   ArrayResize(payload, 2 + n);
   payload[0] = (uchar)(code >> 8);
   payload[1] = (uchar)(code & 0xFF);
   if(n > 0)
      ArrayCopy(payload, text, 2, 0, n);
   ws_send_frame(0x8, payload, 2 + n);
  }

//--- read and handle every complete frame (frames are handled strictly in order); when the agent is gone,
//--- the link fails only after them
void pump_frames()
  {
   if(!read_socket())
      return;
   handle_received();
   if(g_peer_gone && g_state != LINK_DOWN)
     {
      string why = g_peer_why;     // a copy: link_failed clears g_peer_why
      link_failed(why, 0);         // a partial frame left in g_rx is discarded with it
     }
  }

//--- every complete frame of g_rx, in order; returns when none is left (or the link failed)
void handle_received()
  {
   while(g_state == LINK_CHALLENGE || g_state == LINK_HELLO || g_state == LINK_READY)
     {
      if(g_rx_len < 2)
         return;
      int b0 = g_rx[0], b1 = g_rx[1];
      int opcode = b0 & 0x0F;
      long len = b1 & 0x7F;
      int pos = 2;
      if((b1 & 0x80) != 0)
        {
         link_failed("protocol error: masked frame from the server", 1002);
         return;
        }
      if(len == 126)
        {
         if(g_rx_len < 4)
            return;
         len = (g_rx[2] << 8) | g_rx[3];
         pos = 4;
        }
      else if(len == 127)
        {
         if(g_rx_len < 10)
            return;
         len = 0;
         for(int b = 0; b < 8; b++)
            len = (len << 8) | g_rx[2 + b];
         pos = 10;
        }
      if(len > MAX_FRAME)
        {
         link_failed("frame from the agent over the size cap", 1009);
         return;
        }
      if(g_rx_len < pos + len)
         return;                   // wait for the rest
      uchar payload[];
      ArrayResize(payload, (int)len);
      if(len > 0)
         ArrayCopy(payload, g_rx, 0, pos, (int)len);
      rx_consume(pos + (int)len);
      bool fin = (b0 & 0x80) != 0;
      if(opcode == 0x0 || (opcode == 0x1 && !fin))
        {
         // RFC 6455 5.4: a text message may come in fragments (control frames may come between them)
         if((opcode == 0x1 && g_frag_op >= 0) || (opcode == 0x0 && g_frag_op < 0))
           {
            ws_send_close(1002, "bad fragmentation");
            link_failed("protocol error: bad fragmentation from the agent", 1002);
            return;
           }
         if(g_frag_len + len > MAX_FRAME)
           {
            ws_send_close(1009, "message over the size cap");
            link_failed("message from the agent over the size cap", 1009);
            return;
           }
         if(opcode == 0x1)
           {
            g_frag_op = 0x1;
            g_frag_len = 0;
           }
         ArrayResize(g_frag, g_frag_len + (int)len, 65536);
         if(len > 0)
            ArrayCopy(g_frag, payload, g_frag_len, 0, (int)len);
         g_frag_len += (int)len;
         if(!fin)
            continue;
         string whole = CharArrayToString(g_frag, 0, g_frag_len, CP_UTF8);
         g_frag_op = -1;
         g_frag_len = 0;
         handle_frame(whole);
         continue;
        }
      if(opcode == 0x1)
        {
         string text = CharArrayToString(payload, 0, (int)len, CP_UTF8);
         handle_frame(text);
        }
      else if(opcode == 0x8)
        {
         int code = (len >= 2) ? ((payload[0] << 8) | payload[1]) : 1005;   // 1005: "no code" (local only)
         string reason = (len > 2) ? CharArrayToString(payload, 2, (int)len - 2, CP_UTF8) : "";
         ws_send_close(code == 1005 ? 1000 : code, "");                     // never echo 1005
         link_failed(StringFormat("closed by the agent: %d %s%s", code, reason, close_hint(code)), code);
         return;
        }
      else if(opcode == 0x9)
         ws_send_frame(0xA, payload, (int)len);   // ping -> pong, same payload
      // 0xA pong: nothing; 0x2 binary: not part of the protocol, ignored
     }
  }

string close_hint(int code)
  {
   if(code == 4001) return " (the agent says this EA failed its challenge: check that TokenFile names the agent's token file)";
   if(code == 4006) return " (another EA is connected to this port: attach HedgeBridge to one chart only)";
   if(code == 4008) return " (this terminal is logged in to another account than the agent expects)";
   if(code == 4004) return " (update HedgeBridge.mq4 to the agent's version)";
   return "";
  }

//+------------------------------------------------------------------+
//| frames from the agent                                             |
//+------------------------------------------------------------------+
void handle_frame(const string &json)
  {
   string type = json_get_string(json, "type");
   if(type == "challenge")
      on_challenge(json);
   else if(type == "welcome")
      on_welcome(json);
   else if(g_state != LINK_READY)
      return;                      // nothing else before the welcome
   else if(type == "hb")
      return;
   else if(type == "order")
      handle_order(json);
   else if(type == "query")
      handle_query(json);
   else if(type == "get_positions")
      handle_get_positions(json);
   else if(type == "watch")
      handle_watch(json);
   else if(type == "error")
      Print("HedgeBridge: the agent says: ", json_get_string(json, "reason"));
   else
      send_error("bad_frame", "unknown type '" + type + "'", "");
  }

void send_error(const string code, const string reason, const string ref)
  {
   string ref_json = (ref == "") ? "" : ",\"ref\":" + jstr(ref);
   ws_send_text("{\"type\":\"error\",\"code\":" + jstr(code) + ",\"reason\":" + jstr(reason) + ref_json + "}");
  }

void handle_watch(const string &json)
  {
   string wanted[];
   int n = json_get_string_array(json, "symbols", wanted);
   string ok = "", missing = "";
   ArrayResize(g_watch, 0);
   for(int i = 0; i < n; i++)
     {
      if(SymbolSelect(wanted[i], true))
        {
         int k = ArraySize(g_watch);
         ArrayResize(g_watch, k + 1);
         g_watch[k] = wanted[i];
         ok += (ok == "" ? "" : ",") + jstr(wanted[i]);
        }
      else
         missing += (missing == "" ? "" : ",") + jstr(wanted[i]);
     }
   ArrayResize(g_last_bid, ArraySize(g_watch));
   ArrayResize(g_last_ask, ArraySize(g_watch));
   ArrayInitialize(g_last_bid, 0);   // send every watched symbol once
   ArrayInitialize(g_last_ask, 0);
   ws_send_text("{\"type\":\"watching\",\"symbols\":[" + ok + "],\"missing\":[" + missing + "]}");
  }

//+------------------------------------------------------------------+
//| streams                                                           |
//+------------------------------------------------------------------+
//--- PROTOCOL section 1. TimeCurrent() is the server time of the LAST QUOTE (frozen while the market is
//--- closed), TimeGMT() the PC's UTC clock. The offset is measured only when TimeCurrent() has moved since the
//--- last look (a quote just came, so it is "now" on the server); otherwise the last good one is kept. Every
//--- change is logged (MQL4/Files/HedgeBridge/utc-offsets.csv) with the UTC time it holds from, so that a
//--- restart has it at once and old times are converted with the offset of their own time (DST).
//--- first: at OnInit, with no logged offset yet, TimeCurrent() is taken as it is (best effort).
void update_offset(bool first)
  {
   datetime tc = TimeCurrent();
   bool fresh = first ? !g_offset_known : tc > g_tc_seen;
   if(tc > g_tc_seen)
      g_tc_seen = tc;
   if(!fresh || tc == 0)
      return;
   datetime gmt = TimeGMT();
   long candidate = (long)MathRound((double)((long)tc - (long)gmt) / OFFSET_STEP_S) * OFFSET_STEP_S;
   if(candidate < OFFSET_MIN_S || candidate > OFFSET_MAX_S)
      return;
   if(!g_offset_known || candidate != g_offset)
      offsets_add((long)gmt, candidate);
   g_offset = candidate;
   g_offset_known = true;
  }

//--- a broker server time in UTC, with the offset that held at that time
long to_utc(datetime server_time)
  {
   int n = ArraySize(g_off_val);
   long offset = (n > 0) ? g_off_val[0] : g_offset;
   for(int i = 0; i < n; i++)
      if(g_off_from[i] + g_off_val[i] <= (long)server_time)
         offset = g_off_val[i];
   return (long)server_time - offset;
  }

void offsets_add(long utc_from, long offset)
  {
   int n = ArraySize(g_off_val);
   ArrayResize(g_off_from, n + 1);
   ArrayResize(g_off_val, n + 1);
   g_off_from[n] = utc_from;
   g_off_val[n] = offset;
   int h = FileOpen(OFFSETS_FILE, FILE_READ | FILE_WRITE | FILE_TXT | FILE_ANSI | FILE_SHARE_READ);
   if(h == INVALID_HANDLE)
     {
      Print("HedgeBridge: cannot write ", OFFSETS_FILE, ": ", GetLastError());
      return;
     }
   FileSeek(h, 0, SEEK_END);
   FileWriteString(h, IntegerToString(utc_from) + ";" + IntegerToString(offset) + "\r\n");
   FileFlush(h);
   FileClose(h);
  }

void offsets_load()
  {
   ArrayResize(g_off_from, 0);
   ArrayResize(g_off_val, 0);
   int h = FileOpen(OFFSETS_FILE, FILE_READ | FILE_TXT | FILE_ANSI | FILE_SHARE_READ);
   if(h == INVALID_HANDLE)
      return;                      // first run
   while(!FileIsEnding(h))
     {
      string parts[];
      if(StringSplit(FileReadString(h), ';', parts) < 2)
         continue;
      int n = ArraySize(g_off_val);
      ArrayResize(g_off_from, n + 1);
      ArrayResize(g_off_val, n + 1);
      g_off_from[n] = StringToInteger(parts[0]);
      g_off_val[n] = StringToInteger(parts[1]);
     }
   FileClose(h);
   int k = ArraySize(g_off_val);
   if(k > 0)
     {
      g_offset = g_off_val[k - 1];
      g_offset_known = true;
     }
  }

void send_ticks()
  {
   string q = "";
   for(int i = 0; i < ArraySize(g_watch); i++)
     {
      double bid = MarketInfo(g_watch[i], MODE_BID);
      double ask = MarketInfo(g_watch[i], MODE_ASK);
      if(bid == g_last_bid[i] && ask == g_last_ask[i])
         continue;
      g_last_bid[i] = bid;
      g_last_ask[i] = ask;
      int digits = (int)MarketInfo(g_watch[i], MODE_DIGITS);
      long t_ms = to_utc((datetime)MarketInfo(g_watch[i], MODE_TIME)) * 1000;
      q += (q == "" ? "" : ",") + "[" + jstr(g_watch[i]) + "," + DoubleToString(bid, digits) + "," +
           DoubleToString(ask, digits) + "," + IntegerToString(t_ms) + "]";
     }
   if(q != "")   // "type" first: the bridge's fast path
      ws_send_text("{\"type\":\"ticks\",\"q\":[" + q + "]}");
  }

bool trade_allowed()
  {
   // not IsTradeAllowed(): it is also false while another EA holds the trade context
   return TerminalInfoInteger(TERMINAL_TRADE_ALLOWED) && MQLInfoInteger(MQL_TRADE_ALLOWED) &&
          AccountInfoInteger(ACCOUNT_TRADE_ALLOWED) && AccountInfoInteger(ACCOUNT_TRADE_EXPERT);
  }

void account_values(double &vals[])
  {
   vals[0] = AccountBalance();
   vals[1] = AccountCredit();
   vals[2] = trade_allowed() ? 1 : 0;
   vals[3] = IsConnected() ? 1 : 0;
   vals[4] = AccountEquity();
   vals[5] = AccountMargin();
  }

//--- the account object, now; remember it as the last one sent
string account_json(bool remember)
  {
   double v[6];
   account_values(v);
   if(remember)
     {
      ArrayCopy(g_acc_last, v);
      g_acc_known = true;
      g_acc_sent = now_ms();
     }
   string level = (v[5] > 0) ? DoubleToString(v[4] / v[5] * 100.0, 2) : "null";
   return "{\"type\":\"account\",\"login\":" + IntegerToString(AccountNumber()) +
          ",\"balance\":" + DoubleToString(v[0], 2) + ",\"credit\":" + DoubleToString(v[1], 2) +
          ",\"equity\":" + DoubleToString(v[4], 2) + ",\"margin\":" + DoubleToString(v[5], 2) +
          ",\"margin_level\":" + level + ",\"currency\":" + jstr(AccountCurrency()) +
          ",\"trade_allowed\":" + (v[2] > 0 ? "true" : "false") +
          ",\"connected\":" + (v[3] > 0 ? "true" : "false") + "}";
  }

//--- balance, credit and the switches at once when they change; equity and margin at most once a second
void send_account(bool force)
  {
   double v[6];
   account_values(v);
   bool flags_changed = !g_acc_known;
   for(int i = 0; i < 4; i++)
      if(v[i] != g_acc_last[i]) flags_changed = true;
   bool floating_changed = v[4] != g_acc_last[4] || v[5] != g_acc_last[5];
   bool due = now_ms() - g_acc_sent >= 1000;
   if(!force && !flags_changed && !(floating_changed && due))
      return;
   ws_send_text(account_json(true));
  }

//+------------------------------------------------------------------+
//| orders: exactly once per request id                               |
//+------------------------------------------------------------------+
void handle_order(const string &json)
  {
   string id = json_get_string(json, "id");
   string op = json_get_string(json, "op");
   if(id == "" || (op != "open" && op != "close") || !json_has(json, "volume") || !json_has(json, "magic"))
     {
      send_error("bad_frame", "frame 'order': needs id, op, volume and magic", id);
      return;
     }
   // a frame this EA cannot execute exactly as meant: an error (ref = its id), no ack, no store, no trade
   string side = json_get_string(json, "side");
   if(json_get_double(json, "volume", 0) <= 0)
     {
      send_error("bad_frame", "frame 'order': field 'volume': must be > 0", id);
      return;
     }
   if(op == "open" && side != "BUY" && side != "SELL")
     {
      send_error("bad_frame", "frame 'order': field 'side': must be exactly BUY or SELL", id);
      return;
     }
   if(op == "open" && json_get_string(json, "symbol") == "")
     {
      send_error("bad_frame", "frame 'order': field 'symbol': required for an open", id);
      return;
     }
   if(op == "close" && json_get_long(json, "ticket", 0) <= 0)
     {
      send_error("bad_frame", "frame 'order': field 'ticket': required for a close", id);
      return;
     }
   int k = dedup_get(id);
   if(k >= 0)
     {
      send_ack(id, true);
      send_result(g_store[k], false);   // a repeated id: the stored result, never a second order
      return;
     }
   StoreEntry e;
   e.id = id;
   e.op = op;
   e.magic = json_get_long(json, "magic", 0);
   e.target = json_get_long(json, "ticket", 0);
   e.status = "pending";
   e.ticket = 0;
   e.price = 0;
   e.volume = 0;
   e.time = 0;
   e.code = 0;
   e.reason = "";
   e.at = (long)TimeGMT();
   dedup_put(e);                  // written ahead of any trade call
   send_ack(id, false);
   if(op == "open")
      execute_open(json, e);
   else
      execute_close(json, e);
   dedup_put(e);
   send_result(e, true);          // with the account: the balance the agent reads next is current
  }

void send_ack(const string id, bool dup)
  {
   ws_send_text("{\"type\":\"ack\",\"id\":" + jstr(id) + ",\"dup\":" + (dup ? "true" : "false") + "}");
  }

bool wait_trade_context()
  {
   ulong deadline = now_ms() + TradeContextWaitMs;
   while(IsTradeContextBusy())
     {
      if(now_ms() > deadline || IsStopped())
         return false;
      Sleep(10);
     }
   return true;
  }

bool retried(int code) { return code == 146 || code == 138 || code == 135 || code == 136; }

void finish_failed(StoreEntry &e, int code)
  {
   e.status = (code == 128 || code == 1) ? "unknown" : "rejected";   // 128: the order may exist
   e.code = code;
   e.reason = error_text(code);
  }

void execute_open(const string &json, StoreEntry &e)
  {
   string symbol = json_get_string(json, "symbol");
   int cmd = (json_get_string(json, "side") == "BUY") ? OP_BUY : OP_SELL;   // exactly BUY or SELL: checked
   double volume = json_get_double(json, "volume", 0);
   int deviation = (int)json_get_long(json, "deviation", 0);
   string comment = json_get_string(json, "comment");
   double sl = json_get_double(json, "sl", 0);                               // optional protective stop
   if(!SymbolSelect(symbol, true))  // MarketInfo of a symbol not in Market Watch has no prices
     {
      finish_failed(e, 4106);
      return;
     }
   for(int tries = 0; ; tries++)
     {
      int code = 146;
      if(wait_trade_context())
        {
         RefreshRates();
         int digits = (int)MarketInfo(symbol, MODE_DIGITS);
         double price = NormalizeDouble(MarketInfo(symbol, cmd == OP_BUY ? MODE_ASK : MODE_BID), digits);
         ResetLastError();
         double stop = (sl > 0) ? NormalizeDouble(sl, digits) : 0;
         int ticket = OrderSend(symbol, cmd, volume, price, deviation, stop, 0, comment, (int)e.magic, 0, clrNONE);
         if(ticket > 0)
           {
            e.status = "done";
            e.ticket = ticket;
            e.price = price;
            e.volume = volume;
            e.time = to_utc(TimeCurrent());
            if(OrderSelect(ticket, SELECT_BY_TICKET))
              {
               e.price = OrderOpenPrice();
               e.volume = OrderLots();
               e.time = to_utc(OrderOpenTime());
              }
            return;
           }
         code = GetLastError();
        }
      if(retried(code) && tries < MaxRetries)
        {
         Sleep(RetryPauseMs);
         continue;
        }
      finish_failed(e, code);
      return;
     }
  }

void execute_close(const string &json, StoreEntry &e)
  {
   int ticket = (int)e.target;
   double volume = json_get_double(json, "volume", 0);
   int deviation = (int)json_get_long(json, "deviation", 0);
   if(!OrderSelect(ticket, SELECT_BY_TICKET) || OrderCloseTime() != 0 || OrderType() > OP_SELL)
     {
      finish_failed(e, 4108);     // not an open trade: never send a close for it
      return;
     }
   for(int tries = 0; ; tries++)
     {
      int code = 146;
      if(wait_trade_context())
        {
         RefreshRates();
         if(!OrderSelect(ticket, SELECT_BY_TICKET))
           {
            finish_failed(e, 4108);
            return;
           }
         string symbol = OrderSymbol();
         int digits = (int)MarketInfo(symbol, MODE_DIGITS);
         double price = NormalizeDouble(MarketInfo(symbol, OrderType() == OP_BUY ? MODE_BID : MODE_ASK), digits);
         ResetLastError();
         if(OrderClose(ticket, volume, price, deviation, clrNONE))
           {
            e.status = "done";
            e.ticket = ticket;
            e.price = price;
            e.volume = volume;
            e.time = to_utc(TimeCurrent());
            if(OrderSelect(ticket, SELECT_BY_TICKET) && OrderCloseTime() != 0)
              {
               e.price = OrderClosePrice();
               e.time = to_utc(OrderCloseTime());
              }
            return;
           }
         code = GetLastError();
        }
      if(retried(code) && tries < MaxRetries)
        {
         Sleep(RetryPauseMs);
         continue;
        }
      finish_failed(e, code);
      return;
     }
  }

string stored_fields(const StoreEntry &e, const string status, int code, const string reason)
  {
   string s = "\"status\":\"" + status + "\"";
   if(status == "done")
      s += ",\"ticket\":" + IntegerToString(e.ticket) + ",\"price\":" + DoubleToString(e.price, 8) +
           ",\"volume\":" + num(e.volume) + ",\"time\":" + IntegerToString(e.time);
   return s + ",\"code\":" + IntegerToString(code) + ",\"reason\":" + jstr(reason);
  }

void send_result(const StoreEntry &e, bool with_account)
  {
   string fields = (e.status == "pending")   // stopped mid-order: the trade may exist
                   ? stored_fields(e, "unknown", 128, "EA restarted during the order")
                   : stored_fields(e, e.status, e.code, e.reason);
   if(with_account)
      fields += ",\"account\":" + account_json(true);
   ws_send_text("{\"type\":\"result\",\"id\":" + jstr(e.id) + "," + fields + "}");
  }

//+------------------------------------------------------------------+
//| lookups                                                           |
//+------------------------------------------------------------------+
//--- the trade selected with OrderSelect, as a protocol trade object
string trade_json()
  {
   int ticket = OrderTicket();
   bool closed = OrderCloseTime() != 0;
   string s = "{\"ticket\":" + IntegerToString(ticket) + ",\"symbol\":" + jstr(OrderSymbol()) +
              ",\"side\":\"" + (OrderType() == OP_BUY ? "BUY" : "SELL") + "\"" +   // market trades only
              ",\"volume\":" + DoubleToString(OrderLots(), lot_digits(OrderSymbol())) +
              ",\"open_price\":" + DoubleToString(OrderOpenPrice(), 8) +
              ",\"open_time\":" + IntegerToString(to_utc(OrderOpenTime())) +
              ",\"magic\":" + IntegerToString(OrderMagicNumber()) +
              ",\"comment\":" + jstr(OrderComment()) +
              ",\"state\":\"" + (closed ? "closed" : "open") + "\"";
   if(closed)
     {
      s += ",\"close_price\":" + DoubleToString(OrderClosePrice(), 8) +
           ",\"close_time\":" + IntegerToString(to_utc(OrderCloseTime()));
      int k = closed_by_us(ticket, to_utc(OrderCloseTime()));
      if(k >= 0)
         s += ",\"close_magic\":" + IntegerToString(g_store[k].magic) + ",\"close_reason\":\"closed by expert\"";
      else
         s += ",\"close_reason\":" + jstr(close_reason(OrderComment()));
     }
   return s + "}";
  }

string close_reason(const string comment)
  {
   if(StringFind(comment, "[so") >= 0 || StringFind(comment, "so:") == 0) return "stop out";
   if(StringFind(comment, "[sl]") >= 0) return "stop loss";
   if(StringFind(comment, "[tp]") >= 0) return "take profit";
   return "closed manually";
  }

//--- the newest store entry of a close that closed this ticket: a done one; a pending or unknown one only
//--- if the ticket closed within UNKNOWN_CLOSE_WINDOW_S of the request (a stop-out later is not ours)
int closed_by_us(long ticket, long close_utc)
  {
   for(int i = g_store_n - 1; i >= 0; i--)
     {
      if(g_store[i].op != "close" || g_store[i].target != ticket || g_store[i].status == "rejected")
         continue;
      if(g_store[i].status == "done")
         return i;
      if(g_store[i].at > 0 && close_utc >= g_store[i].at - 1 && close_utc <= g_store[i].at + UNKNOWN_CLOSE_WINDOW_S)
         return i;
     }
   return -1;
  }

bool is_market(int type) { return type == OP_BUY || type == OP_SELL; }

void add_trade(string &list, long &seen[], int ticket)
  {
   for(int i = 0; i < ArraySize(seen); i++)
      if(seen[i] == ticket) return;
   int n = ArraySize(seen);
   ArrayResize(seen, n + 1);
   seen[n] = ticket;
   list += (list == "" ? "" : ",") + trade_json();
  }

void handle_query(const string &json)
  {
   string qid = json_get_string(json, "id");
   string list = "";
   long seen[];
   if(json_has(json, "magic"))
     {
      long magic = json_get_long(json, "magic", -1);
      for(int i = OrdersTotal() - 1; i >= 0; i--)
         if(OrderSelect(i, SELECT_BY_POS, MODE_TRADES) && is_market(OrderType()) && OrderMagicNumber() == magic)
            add_trade(list, seen, OrderTicket());
      for(int h = OrdersHistoryTotal() - 1; h >= 0; h--)
         if(OrderSelect(h, SELECT_BY_POS, MODE_HISTORY) && is_market(OrderType()) && OrderMagicNumber() == magic)
            add_trade(list, seen, OrderTicket());
      // OrderClose carries no magic: only the store knows which of our requests closed a ticket
      for(int s = 0; s < g_store_n; s++)
         if(g_store[s].op == "close" && g_store[s].magic == magic &&
            OrderSelect((int)g_store[s].target, SELECT_BY_TICKET) && is_market(OrderType()) &&
            OrderCloseTime() != 0 && closed_by_us(g_store[s].target, to_utc(OrderCloseTime())) == s)
            add_trade(list, seen, OrderTicket());
     }
   // by ticket: market trades only (a pending order or a balance operation is not a trade, never "SELL")
   if(json_has(json, "ticket") && OrderSelect((int)json_get_long(json, "ticket", 0), SELECT_BY_TICKET) &&
      is_market(OrderType()))
      add_trade(list, seen, OrderTicket());
   string stored = "";
   string req = json_get_string(json, "req");
   int k = (req == "") ? -1 : dedup_get(req);
   if(k >= 0)
      stored = ",\"stored\":{\"op\":\"" + g_store[k].op + "\"," +
               stored_fields(g_store[k], g_store[k].status, g_store[k].code, g_store[k].reason) + "}";
   ws_send_text("{\"type\":\"trades\",\"id\":" + jstr(qid) + ",\"trades\":[" + list + "]" + stored + "}");
  }

void handle_get_positions(const string &json)
  {
   string list = "";
   for(int i = 0; i < OrdersTotal(); i++)
      if(OrderSelect(i, SELECT_BY_POS, MODE_TRADES) && is_market(OrderType()))
         list += (list == "" ? "" : ",") + trade_json();
   ws_send_text("{\"type\":\"positions\",\"id\":" + jstr(json_get_string(json, "id")) + ",\"positions\":[" + list + "]}");
  }

//+------------------------------------------------------------------+
//| de-dup store: MQL4/Files/HedgeBridge/dedup-<login>.csv            |
//+------------------------------------------------------------------+
string store_path() { return "HedgeBridge\\dedup-" + IntegerToString(g_store_login) + ".csv"; }

//--- name the store for the login once AccountNumber() is known (0 while the terminal logs in): read the
//--- file, and append what was kept in memory before (orders handled meanwhile)
void dedup_open()
  {
   if(g_store_login != 0 || AccountNumber() == 0)
      return;
   StoreEntry unsaved[];
   int n = g_store_n;
   ArrayResize(unsaved, n);
   for(int i = 0; i < n; i++)
      store_copy(unsaved[i], g_store[i]);
   g_store_login = AccountNumber();
   dedup_load();
   for(int j = 0; j < n; j++)
      if(dedup_get(unsaved[j].id) < 0)
         dedup_put(unsaved[j]);
  }

int dedup_get(const string id)
  {
   for(int i = g_store_n - 1; i >= 0; i--)
      if(g_store[i].id == id) return i;
   return -1;
  }

string store_line(const StoreEntry &e)
  {
   string reason = e.reason;
   StringReplace(reason, ";", ",");
   StringReplace(reason, "\n", " ");
   return e.id + ";" + e.op + ";" + IntegerToString(e.magic) + ";" + IntegerToString(e.target) + ";" + e.status +
          ";" + IntegerToString(e.ticket) + ";" + DoubleToString(e.price, 8) + ";" + num(e.volume) +
          ";" + IntegerToString(e.time) + ";" + IntegerToString(e.code) + ";" + reason + ";" + IntegerToString(e.at);
  }

//--- keep it in memory and append it to the file, flushed: it must survive a crash right after
void dedup_put(const StoreEntry &e)
  {
   int k = dedup_get(e.id);
   if(k < 0)
     {
      k = g_store_n++;
      ArrayResize(g_store, g_store_n, 256);
     }
   store_copy(g_store[k], e);
   if(g_store_login == 0)
      return;                      // login not known yet: kept in memory, written by dedup_open()
   int h = FileOpen(store_path(), FILE_READ | FILE_WRITE | FILE_TXT | FILE_ANSI | FILE_SHARE_READ);
   if(h == INVALID_HANDLE)
     {
      Print("HedgeBridge: cannot write the de-dup store ", store_path(), ": ", GetLastError());
      return;
     }
   FileSeek(h, 0, SEEK_END);
   FileWriteString(h, store_line(e) + "\r\n");
   FileFlush(h);
   FileClose(h);
   if(++g_store_lines > STORE_COMPACT_AT)
      dedup_compact();
  }

void dedup_load()
  {
   g_store_n = 0;
   g_store_lines = 0;
   if(g_store_login == 0)
      return;
   int h = FileOpen(store_path(), FILE_READ | FILE_TXT | FILE_ANSI | FILE_SHARE_READ);
   if(h == INVALID_HANDLE)
      return;                      // first run
   while(!FileIsEnding(h))
     {
      string parts[];
      string line = FileReadString(h);
      if(StringSplit(line, ';', parts) < 11)
         continue;
      StoreEntry e;
      e.id = parts[0];
      e.op = parts[1];
      e.magic = StringToInteger(parts[2]);
      e.target = StringToInteger(parts[3]);
      e.status = parts[4];
      e.ticket = StringToInteger(parts[5]);
      e.price = StringToDouble(parts[6]);
      e.volume = StringToDouble(parts[7]);
      e.time = StringToInteger(parts[8]);
      e.code = (int)StringToInteger(parts[9]);
      e.reason = parts[10];
      e.at = (ArraySize(parts) > 11) ? StringToInteger(parts[11]) : 0;   // v1 lines have no 'at'

      int k = dedup_get(e.id);     // the last line of an id wins
      if(k < 0)
        {
         k = g_store_n++;
         ArrayResize(g_store, g_store_n, 256);
        }
      store_copy(g_store[k], e);
      g_store_lines++;
     }
   FileClose(h);
   if(g_store_lines > STORE_COMPACT_AT)
      dedup_compact();
  }

//--- rewrite the file with the newest STORE_KEEP ids
void dedup_compact()
  {
   int first = MathMax(0, g_store_n - STORE_KEEP);
   string tmp = store_path() + ".tmp";
   int h = FileOpen(tmp, FILE_WRITE | FILE_TXT | FILE_ANSI);
   if(h == INVALID_HANDLE)
      return;
   for(int i = first; i < g_store_n; i++)
      FileWriteString(h, store_line(g_store[i]) + "\r\n");
   FileFlush(h);
   FileClose(h);
   if(!FileMove(tmp, 0, store_path(), FILE_REWRITE))
     {
      Print("HedgeBridge: cannot compact the de-dup store: ", GetLastError());
      return;
     }
   for(int j = first; j < g_store_n; j++)
      store_copy(g_store[j - first], g_store[j]);
   g_store_n -= first;
   ArrayResize(g_store, g_store_n, 256);
   g_store_lines = g_store_n;
  }

//+------------------------------------------------------------------+
//| token, handshake helpers                                          |
//+------------------------------------------------------------------+
string read_token()
  {
   int h = FileOpen(TokenFile, FILE_READ | FILE_TXT | FILE_ANSI | FILE_COMMON | FILE_SHARE_READ);
   if(h == INVALID_HANDLE)
      return "";
   string token = FileReadString(h);
   FileClose(h);
   return StringTrimRight(StringTrimLeft(token));
  }

//+------------------------------------------------------------------+
//| randomness and HMAC-SHA256                                        |
//+------------------------------------------------------------------+
//--- n bytes from BCryptGenRandom (the system CSPRNG). If it fails (it should not), a SHA-256 chain over
//--- the microsecond counter, tick count, local time and a counter, said once in the Experts tab
void random_bytes(uchar &out[], int n)
  {
   ArrayResize(out, n);
   if(BCryptGenRandom(0, out, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0)
      return;
   static bool warned = false;
   if(!warned)
      Print("HedgeBridge: BCryptGenRandom failed; using a SHA-256 mix of clocks instead");
   warned = true;
   for(int i = 0; i < n; i += 32)
     {
      g_pool_n++;
      string seed = IntegerToString((long)GetMicrosecondCount()) + "|" + IntegerToString(GetTickCount()) + "|" +
                    IntegerToString((long)TimeLocal()) + "|" + IntegerToString((long)g_pool_n) + "|";
      uchar data[], digest[];
      int sn = StringToCharArray(seed, data, 0, WHOLE_ARRAY, CP_ACP) - 1;
      ArrayResize(data, sn + 32);
      ArrayCopy(data, g_pool, sn, 0, 32);
      sha256(data, sn + 32, digest);
      ArrayCopy(g_pool, digest, 0, 0, 32);
      ArrayCopy(out, digest, i, 0, MathMin(32, n - i));
     }
  }

string hex(const uchar &bytes[], int n)
  {
   string out = "";
   for(int i = 0; i < n; i++)
      out += StringFormat("%02x", bytes[i]);
   return out;
  }

string random_hex(int n_bytes)
  {
   uchar b[];
   random_bytes(b, n_bytes);
   return hex(b, n_bytes);
  }

bool is_hex64(const string v)
  {
   if(StringLen(v) != 64)
      return false;
   for(int i = 0; i < 64; i++)
     {
      ushort c = StringGetCharacter(v, i);
      if(!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
         return false;
     }
   return true;
  }

void sha256(const uchar &data[], int n, uchar &digest[])
  {
   uchar in[], none[];
   ArrayResize(in, n);
   if(n > 0)
      ArrayCopy(in, data, 0, 0, n);
   CryptEncode(CRYPT_HASH_SHA256, in, none, digest);
  }

//--- RFC 2104 HMAC with SHA-256 (block 64 bytes), key and message as ASCII; 64 lowercase hex digits.
//--- Test vector (PROTOCOL section 3): key 43 x "T", message "HB2|ea|" + 64 x "a" + "|" + 64 x "b"
//--- gives 93603f4666f35c115e282c9a394fecad9f468669faf3db29f8c2090f89a52ad3
string hmac_sha256_hex(const string key, const string message)
  {
   uchar k[], m[], block[64], inner[], outer[], digest[], mac[];
   int kn = StringToCharArray(key, k, 0, WHOLE_ARRAY, CP_ACP) - 1;   // without the trailing 0
   int mn = StringToCharArray(message, m, 0, WHOLE_ARRAY, CP_ACP) - 1;
   ArrayInitialize(block, 0);
   if(kn > 64)
     {
      uchar kd[];
      sha256(k, kn, kd);
      ArrayCopy(block, kd, 0, 0, 32);
     }
   else if(kn > 0)
      ArrayCopy(block, k, 0, 0, kn);
   ArrayResize(inner, 64 + mn);
   for(int i = 0; i < 64; i++)
      inner[i] = (uchar)(block[i] ^ 0x36);
   if(mn > 0)
      ArrayCopy(inner, m, 64, 0, mn);
   sha256(inner, 64 + mn, digest);
   ArrayResize(outer, 64 + 32);
   for(int j = 0; j < 64; j++)
      outer[j] = (uchar)(block[j] ^ 0x5c);
   ArrayCopy(outer, digest, 64, 0, 32);
   sha256(outer, 96, mac);
   return hex(mac, 32);
  }

//--- the decimals of a symbol's lot step (0.01 -> 2, 0.1 -> 1, 1 -> 0), for volumes on the wire
int lot_digits(const string symbol)
  {
   double step = MarketInfo(symbol, MODE_LOTSTEP);
   if(step <= 0)
      return 2;
   int d = 0;
   while(d < 8 && MathAbs(step * MathPow(10, d) - MathRound(step * MathPow(10, d))) > 1e-7)
      d++;
   return d;
  }

//--- a number with up to 8 decimals, trailing zeros dropped (store lines and results keep the exact lots)
string num(double v)
  {
   string t = DoubleToString(v, 8);
   int n = StringLen(t);
   while(n > 1 && StringGetCharacter(t, n - 1) == '0')
      n--;
   if(n > 1 && StringGetCharacter(t, n - 1) == '.')
      n--;
   return StringSubstr(t, 0, n);
  }

string expected_accept(const string key)
  {
   uchar text[], none[], sha[], b64[];
   StringToCharArray(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", text, 0,
                     StringLen(key) + 36, CP_ACP);
   CryptEncode(CRYPT_HASH_SHA1, text, none, sha);
   CryptEncode(CRYPT_BASE64, sha, none, b64);
   return CharArrayToString(b64, 0, ArraySize(b64), CP_ACP);
  }

//--- the value of an HTTP header (name given in lower case), as sent
string header_value(const string head, const string name)
  {
   string lower = head;
   StringToLower(lower);
   int at = StringFind(lower, "\r\n" + name + ":");
   if(at < 0)
      return "";
   int from = at + StringLen(name) + 3;
   int to = StringFind(head, "\r\n", from);
   if(to < 0)
      to = StringLen(head);
   return StringTrimRight(StringTrimLeft(StringSubstr(head, from, to - from)));
  }

string error_text(int code)
  {
   switch(code)
     {
      case 1:    return "no error returned but the result is unknown";
      case 2:    return "common error";
      case 3:    return "invalid trade parameters";
      case 4:    return "trade server is busy";
      case 6:    return "no connection with the trade server";
      case 8:    return "too frequent requests";
      case 64:   return "account disabled";
      case 128:  return "trade timeout";
      case 129:  return "invalid price";
      case 130:  return "invalid stops";
      case 131:  return "invalid trade volume";
      case 132:  return "market is closed";
      case 133:  return "trade is disabled";
      case 134:  return "not enough money";
      case 135:  return "price changed";
      case 136:  return "off quotes";
      case 137:  return "broker is busy";
      case 138:  return "requote";
      case 139:  return "order is locked";
      case 141:  return "too many requests";
      case 146:  return "trade context is busy";
      case 148:  return "too many open and pending orders";
      case 149:  return "hedging prohibited";
      case 150:  return "prohibited by FIFO rules";
      case 4106: return "unknown symbol";
      case 4108: return "invalid ticket: no open trade with this ticket";
      case 4109: return "trade not allowed: enable AutoTrading and 'Allow live trading'";
     }
   return "MT4 error " + IntegerToString(code);
  }

//+------------------------------------------------------------------+
//| minimal JSON: a reader for flat objects, a writer by hand         |
//+------------------------------------------------------------------+
string jstr(const string v) { return "\"" + json_escape(v) + "\""; }

string json_escape(const string v)
  {
   string out = "";
   int n = StringLen(v);
   for(int i = 0; i < n; i++)
     {
      ushort c = StringGetCharacter(v, i);
      if(c == '"') out += "\\\"";
      else if(c == '\\') out += "\\\\";
      else if(c == '\n') out += "\\n";
      else if(c == '\r') out += "\\r";
      else if(c == '\t') out += "\\t";
      else if(c < 0x20) out += StringFormat("\\u%04x", c);
      else out += ShortToString(c);
     }
   return out;
  }

int json_ws(const string &s, int i)
  {
   int n = StringLen(s);
   while(i < n)
     {
      ushort c = StringGetCharacter(s, i);
      if(c != ' ' && c != '\t' && c != '\r' && c != '\n')
         break;
      i++;
     }
   return i;
  }

//--- the index just past the value that starts at i (after whitespace), or -1
int json_skip(const string &s, int i)
  {
   int n = StringLen(s);
   i = json_ws(s, i);
   if(i >= n)
      return -1;
   ushort c = StringGetCharacter(s, i);
   if(c == '"')
     {
      for(i++; i < n; i++)
        {
         c = StringGetCharacter(s, i);
         if(c == '\\') i++;
         else if(c == '"') return i + 1;
        }
      return -1;
     }
   if(c == '{' || c == '[')
     {
      int depth = 0;
      bool in_str = false;
      for(; i < n; i++)
        {
         c = StringGetCharacter(s, i);
         if(in_str)
           {
            if(c == '\\') i++;
            else if(c == '"') in_str = false;
           }
         else if(c == '"') in_str = true;
         else if(c == '{' || c == '[') depth++;
         else if(c == '}' || c == ']')
           {
            depth--;
            if(depth == 0) return i + 1;
           }
        }
      return -1;
     }
   for(; i < n; i++)                // number, true, false, null
     {
      c = StringGetCharacter(s, i);
      if(c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' || c == '\n')
         break;
     }
   return i;
  }

//--- the raw value of a key of the top-level object: [start, end)
bool json_find(const string &s, const string key, int &start, int &end)
  {
   int n = StringLen(s);
   int i = json_ws(s, 0);
   if(i >= n || StringGetCharacter(s, i) != '{')
      return false;
   i++;
   while(true)
     {
      i = json_ws(s, i);
      if(i >= n || StringGetCharacter(s, i) != '"')
         return false;            // also the closing '}' of an object without the key
      int key_end = json_skip(s, i);
      if(key_end < 0)
         return false;
      string k = json_unescape(s, i + 1, key_end - 1);
      i = json_ws(s, key_end);
      if(i >= n || StringGetCharacter(s, i) != ':')
         return false;
      int vstart = json_ws(s, i + 1);
      int vend = json_skip(s, vstart);
      if(vend < 0)
         return false;
      if(k == key)
        {
         start = vstart;
         end = vend;
         return true;
        }
      i = json_ws(s, vend);
      if(i >= n || StringGetCharacter(s, i) != ',')
         return false;
      i++;
     }
   return false;
  }

string json_unescape(const string &s, int from, int to)
  {
   string out = "";
   for(int i = from; i < to; i++)
     {
      ushort c = StringGetCharacter(s, i);
      if(c != '\\' || i + 1 >= to)
        {
         out += ShortToString(c);
         continue;
        }
      c = StringGetCharacter(s, ++i);
      if(c == 'n') out += "\n";
      else if(c == 'r') out += "\r";
      else if(c == 't') out += "\t";
      else if(c == 'b') out += ShortToString(8);
      else if(c == 'f') out += ShortToString(12);
      else if(c == 'u' && i + 4 < to)
        {
         out += ShortToString(hex4(s, i + 1));
         i += 4;
        }
      else out += ShortToString(c);   // \" \\ \/
     }
   return out;
  }

ushort hex4(const string &s, int at)
  {
   int v = 0;
   for(int i = at; i < at + 4; i++)
     {
      ushort c = StringGetCharacter(s, i);
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 0;
      v = v * 16 + d;
     }
   return (ushort)v;
  }

bool json_has(const string &s, const string key)
  {
   int a, b;
   return json_find(s, key, a, b) && StringSubstr(s, a, b - a) != "null";
  }

string json_get_string(const string &s, const string key, const string dflt = "")
  {
   int a, b;
   if(!json_find(s, key, a, b) || StringGetCharacter(s, a) != '"')
      return dflt;
   return json_unescape(s, a + 1, b - 1);
  }

double json_get_double(const string &s, const string key, double dflt)
  {
   int a, b;
   if(!json_find(s, key, a, b) || StringSubstr(s, a, b - a) == "null")
      return dflt;
   return StringToDouble(StringSubstr(s, a, b - a));
  }

long json_get_long(const string &s, const string key, long dflt)
  {
   int a, b;
   if(!json_find(s, key, a, b) || StringSubstr(s, a, b - a) == "null")
      return dflt;
   return StringToInteger(StringSubstr(s, a, b - a));
  }

//--- the strings of an array value; returns how many
int json_get_string_array(const string &s, const string key, string &out[])
  {
   ArrayResize(out, 0);
   int a, b;
   if(!json_find(s, key, a, b) || StringGetCharacter(s, a) != '[')
      return 0;
   int i = json_ws(s, a + 1);
   while(i < b - 1)
     {
      int e = json_skip(s, i);
      if(e < 0)
         break;
      if(StringGetCharacter(s, i) == '"')
        {
         int k = ArraySize(out);
         ArrayResize(out, k + 1);
         out[k] = json_unescape(s, i + 1, e - 1);
        }
      i = json_ws(s, e);
      if(i < b && StringGetCharacter(s, i) == ',')
         i = json_ws(s, i + 1);
     }
   return ArraySize(out);
  }
//+------------------------------------------------------------------+
