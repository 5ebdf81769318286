"""The client side of the OCI Distribution spec / Docker Registry HTTP API v2.

``hosts`` decides where a repository is served from (mirrors, https or plain
http, which CAs); ``auth`` holds credentials and the Bearer/Basic handshake;
``transport`` sends requests over pooled connections with that auth;
``errcodes`` turns a registry's JSON ``errors`` into Docker's messages;
``progress`` builds Docker's JSON progress messages; ``pull`` walks
manifest → config → layers into the image store.
"""
