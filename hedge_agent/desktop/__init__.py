"""Desktop integration: what the tray shows, one instance per user, start with Windows, the host session.

``tray_model`` is pure (status snapshot in, icon/menu/notifications out); the pystray shell lives in
``hedge_agent.tray``. Nothing here imports a Windows-only or GUI module at import time.
"""
