; byebyebios boot stub: fwtools' own 16-bit real-mode MBR program.
;
; The BIOS loads sector 0 to 0000:7C00 and jumps to it. This code prints the message
; that follows it (NUL-terminated, CRLF line ends, written by fwtools after the last
; byte assembled here) on the screen with the BIOS teletype (int 10h AH=0Eh) and on COM1
; by programming the 16550 UART at 0x3F8 directly, then halts forever.
;
; Rebuild (the bytes are committed as stub.bin and a test compares them):
;     nasm -f bin -o stub.bin stub.asm
;
; Layout of sector 0 after injection: this code, the message, a NUL, zeros up to 440,
; then the untouched disk signature (440), partition table (446) and 55 AA (510).

        bits 16
        org 0x7C00

start:
        cli                     ; no interrupts while the stack is undefined
        xor ax, ax
        mov ds, ax              ; DS = ES = SS = 0: the message is addressed as 0:7Cxx
        mov es, ax
        mov ss, ax
        mov sp, 0x7C00          ; stack grows down below the loaded sector
        sti
        cld                     ; lodsb walks forwards
        jmp 0x0000:normalized   ; some BIOSes enter at 07C0:0000: make CS:IP 0000:7Cxx

normalized:
        ; COM1 (16550): 115200 baud, 8 data bits, no parity, 1 stop bit, FIFOs on.
        mov dx, 0x3F9           ; IER
        xor al, al
        out dx, al              ; no UART interrupts
        mov dl, 0xFB            ; LCR
        mov al, 0x80
        out dx, al              ; DLAB = 1: offsets 0/1 are the divisor latch
        mov dl, 0xF8            ; DLL
        mov al, 1
        out dx, al              ; divisor 1 = 115200 baud
        inc dx                  ; DLM
        xor al, al
        out dx, al
        mov dl, 0xFB            ; LCR
        mov al, 0x03
        out dx, al              ; DLAB = 0, 8N1
        dec dx                  ; FCR
        mov al, 0xC7
        out dx, al              ; enable and clear the FIFOs
        mov dl, 0xFC            ; MCR
        mov al, 0x03
        out dx, al              ; DTR + RTS, loopback off

        mov si, message
next:
        lodsb                   ; AL = next message byte
        test al, al
        jz halt                 ; NUL ends the message
        pusha                   ; int 10h may clobber BP (and others on odd BIOSes)
        mov ah, 0x0E            ; teletype output: AL = char
        mov bx, 0x0007          ; BH = page 0, BL = light grey (graphics modes)
        int 0x10
        popa
        mov ah, al              ; keep the character in AH
        mov dx, 0x3FD           ; LSR
        mov cx, 0xFFFF          ; bounded wait: a missing UART must not hang the loop
wait_thre:
        in al, dx
        test al, 0x20           ; THRE: the transmit holding register is empty
        loopz wait_thre
        mov dl, 0xF8            ; THR
        mov al, ah
        out dx, al              ; send the character
        jmp next

halt:
        cli                     ; nothing may wake us
        hlt
        jmp halt                ; an NMI or SMI can still resume: halt again

message:                        ; fwtools appends the message here
